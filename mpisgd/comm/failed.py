"""Which ranks of a communicator the MPI library reports dead: a cheap, rate-limited question.

A rank killed with ``kill -9`` sends no message and raises no error in the
ranks that are left on MPICH (ch4 has no failure propagation: probes and
receives simply never match), so a server would only notice it by its
silence. The process manager knows sooner: MPICH's hydra records dead
processes and ``MPIX_Comm_get_failed`` (libmpi, called here through
``ctypes`` because mpi4py's MPICH build compiles ``Comm.Get_failed`` as a
stub returning an empty group) answers within milliseconds of the death.
With Open MPI started with ``mpirun --with-ft ulfm``, mpi4py's
``Comm.Get_failed`` is the real ULFM call. Elsewhere the answer is always
"none" and the callers' own deadlines decide. See docs/failures.md.

Each question costs a round trip to the process manager (0.3-4 ms with
hydra), so :class:`FailureDetector` asks at most every ``interval`` seconds.
"""

import ctypes
import functools
import time

from .mpi import MPI


@functools.lru_cache(maxsize=None)
def _mpich_get_failed():
    """libmpi's ``MPIX_Comm_get_failed`` (MPICH), or None."""
    for name in ("libmpi.so.12", "libmpi.so"):
        try:
            return ctypes.CDLL(name).MPIX_Comm_get_failed
        except (OSError, AttributeError):
            continue
    return None


def failed_ranks(comm) -> list:
    """The ranks of ``comm`` (an ``mpi4py`` communicator) the MPI library reports failed (sorted)."""
    function = _mpich_get_failed() if "MPICH" in MPI.Get_library_version() else None
    try:
        if function is not None:
            handle = ctypes.c_int(0)
            if function(ctypes.c_int(MPI._handleof(comm)), ctypes.byref(handle)) != 0:
                return []
            group = MPI.Group.f2py(handle.value)  # MPICH: the Fortran handle is the C handle
        else:
            group = comm.Get_failed()
    except (NotImplementedError, MPI.Exception):
        return []
    size = group.Get_size()
    world = comm.Get_group()
    ranks = MPI.Group.Translate_ranks(group, list(range(size)), world) if size else []
    world.Free()
    if group != MPI.GROUP_EMPTY:
        group.Free()
    return sorted(int(r) for r in ranks if r != MPI.UNDEFINED)


class FailureDetector:
    """``detector()``: the failed ranks of ``comm`` (a :class:`~mpisgd.comm.Communicator` or mpi4py
    communicator), asking the library at most every ``interval`` seconds (in between: the last answer)."""

    def __init__(self, comm, interval: float = 0.5):
        self.comm = getattr(comm, "mpi", comm)
        self.interval = float(interval)
        self.next = 0.0
        self.failed = []

    def __call__(self) -> list:
        now = time.perf_counter()
        if now >= self.next:
            self.next = now + self.interval
            self.failed = failed_ranks(self.comm)
        return self.failed
