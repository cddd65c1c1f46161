"""``mpi4py.MPI``, loaded on first use.

Importing ``mpi4py.MPI`` loads the MPI library and initializes MPI. The
modules of :mod:`mpisgd.comm` import this stand-in instead, so that
``import mpisgd`` (and ``python -m mpisgd train --help``) works on a machine
without an MPI runtime, and MPI starts only when a communicator is built.
Each attribute is looked up in the real module once and then kept on the
stand-in, so later uses cost one attribute lookup.
"""


class _LazyMPI:
    """Forwards attribute lookups to ``mpi4py.MPI``, importing it the first time."""

    def __getattr__(self, name):
        from mpi4py import MPI as module

        value = getattr(module, name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return "<mpi4py.MPI, loaded on first use>"


MPI = _LazyMPI()
