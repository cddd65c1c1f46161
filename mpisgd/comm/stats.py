"""Per-rank communication statistics: bytes on the wire and time blocked in MPI."""

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from . import activity


@dataclass
class CommStats:
    """Counters kept by a :class:`~mpisgd.comm.Communicator` for its own rank.

    ``bytes_sent``/``bytes_received`` count payload bytes. For point-to-point
    messages that is the exact message size; for collectives it is what a
    bandwidth-optimal algorithm moves per rank (``2 (p-1)/p * n`` for an
    all-reduce of ``n`` bytes), so that algorithms can be compared whatever
    algorithm the MPI library picks internally.

    ``wait_s`` is the wall time this rank spent blocked: inside blocking MPI
    calls and ``Wait`` on its requests, i.e. the time communication was *not*
    hidden behind computation. ``progress_s`` is the time spent inside
    ``Test`` calls on requests in flight: CPU time MPI used to move data
    while the rank was otherwise computing (with shared memory, or MPI
    libraries without a progress engine, the copying happens there).
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    wait_s: float = 0.0
    progress_s: float = 0.0
    calls: int = 0

    def count(self, sent: int, received: int) -> None:
        self.bytes_sent += int(sent)
        self.bytes_received += int(received)
        self.calls += 1

    @contextmanager
    def blocked(self, what: str = "blocking communication", detail: str = None):
        """Time a block of code as time blocked in communication; ``what`` (``detail``: peer, tag, size)
        names the wait for the stall watchdog and the trace (:mod:`.activity`)."""
        start = time.perf_counter()
        previous = activity.enter(what, detail) if activity.ON else None
        try:
            yield
        finally:
            self.wait_s += time.perf_counter() - start
            if activity.ON:
                activity.leave(previous)

    def as_dict(self) -> dict:
        return asdict(self)

    def load(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
