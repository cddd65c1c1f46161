"""``python -m mpi4py -m mpisgd.gpucheck [--cpu-dry-run] [--json PATH]``: see :mod:`mpisgd.gpucheck`."""

from .runner import main

raise SystemExit(main())
