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

:class:`FailureWatch` is for the algorithms that cannot go on without a rank
(the collective family): a thread that asks every ``interval`` seconds and,
when a rank is dead, prints which and aborts the job, instead of leaving the
others blocked forever in their next collective.
"""

import atexit
import ctypes
import functools
import sys
import threading
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


class FailureWatch:
    """A daemon thread: when the library reports a rank of ``comm`` dead, write ``message.format(rank=...)``
    to stderr and abort the job (``MPI.COMM_WORLD.Abort(status)``). :meth:`stop` ends it (also at exit)."""

    def __init__(self, comm, message: str, interval: float = 0.5, status: int = 1):
        self.comm, self.message, self.interval, self.status = getattr(comm, "mpi", comm), message, interval, status
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="mpisgd-failure-watch", daemon=True)
        self.thread.start()
        atexit.register(self.stop)  # before mpi4py's MPI_Finalize (atexit runs the later registration first)

    def _watch(self) -> None:
        while not self.stopped.wait(self.interval):
            if MPI.Is_finalized():
                return
            dead = failed_ranks(self.comm)
            if dead and not self.stopped.is_set():
                sys.stderr.write(f"mpisgd: error: {self.message.format(rank=', '.join(map(str, dead)))}\n")
                sys.stderr.flush()
                MPI.COMM_WORLD.Abort(self.status)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()
