"""An emulated cluster on one machine: slow links and stragglers for the benchmarks.

On one machine MPI talks through shared memory and communication is nearly
free, so nothing that hides or reduces communication can show its worth.
This package puts every MPI rank in its own network namespace, joins them
through a user-space link emulator (per-host rate and one-way delay,
straggler hosts with their own link) and launches MPI jobs across them.

- :mod:`.spec`      ``RATE,DELAY`` and ``HOST:RATE,DELAY`` and the link model;
- :mod:`.emulator`  the TUN forwarding process and its faithfulness report;
- :mod:`.helper`    its packet loop in C (``linkemu.c``): find it or build it;
- :mod:`.cluster`   namespaces up and down, the hydra launcher, ``mpiexec`` lines;
- :mod:`.check`     an Allreduce against its bandwidth bound, interface counters;
- ``python -m mpisgd.bench.cluster run|check|down`` (:mod:`.__main__`).

Needs root, ``ip`` and ``chrt`` (Linux); :func:`unavailable` gives the reason
when it cannot run. See docs/emulated-cluster.md.
"""

from .cluster import SPEC_ENV, Cluster, unavailable
from .spec import ClusterSpec, Link

__all__ = ["Cluster", "ClusterSpec", "Link", "SPEC_ENV", "unavailable"]
