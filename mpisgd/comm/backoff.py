"""Waiting by polling without spinning: sleep between polls, longer while nothing happens.

Ranks often outnumber cores, and a rank that spins on ``Test``/``Iprobe``
takes the core from a peer that is still computing (often the very peer it
waits for); MPICH's blocking calls spin too. So, as ``mpi4py.futures``
does, every waiting loop of mpisgd polls, and when a poll found nothing it
sleeps: first a bare yield, then ``shortest`` seconds, doubling up to
``longest``; when something happened the interval starts over, so a burst
of messages is handled at full speed. A wait may have a time limit.

Example (a loop that waits for ``done()`` while ``poll()`` does the work)::

    backoff = Backoff(timeout=60, what="the exit protocol")
    while not done():
        backoff.after(poll())   # poll(): True when it did something

    >>> backoff = Backoff()
    >>> for _ in range(3):
    ...     backoff.idle()
    >>> backoff.interval
    0.0004
"""

import time

from ..errors import MPISGDError
from . import activity

SHORTEST_S = 1e-4
LONGEST_S = 1e-2


class Backoff:
    """The sleeps of one wait: 0, ``shortest``, 2 ``shortest``, ... up to ``longest`` seconds.

    ``timeout`` (seconds from construction; None: no limit) makes the wait
    raise :class:`~mpisgd.errors.MPISGDError` naming ``what`` once passed.
    """

    __slots__ = ("shortest", "longest", "interval", "deadline", "timeout", "what")

    def __init__(self, shortest: float = SHORTEST_S, longest: float = LONGEST_S, *,
                 timeout: float = None, what: str = "a wait"):
        if not 0 < shortest <= longest:
            raise ValueError(f"back-off needs 0 < shortest <= longest, got {shortest}, {longest}")
        self.shortest, self.longest = float(shortest), float(longest)
        self.interval = 0.0
        self.timeout, self.what = timeout, what
        self.deadline = None if timeout is None else time.perf_counter() + timeout

    def reset(self) -> None:
        """Something happened (progress, for the stall watchdog): the next idle poll sleeps the shortest time
        again."""
        self.interval = 0.0
        if activity.ON:
            activity.progress()

    def idle(self) -> None:
        """The poll found nothing: sleep, then lengthen the next sleep."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise MPISGDError(f"{self.what} did not finish within {self.timeout} s")
        if activity.ON:
            activity.polling(self)  # the watchdog and the trace see what this rank polls for
        time.sleep(self.interval)
        self.interval = min(self.longest, max(self.shortest, 2 * self.interval))

    def after(self, happened: bool) -> None:
        """``reset()`` when the poll did something, else ``idle()``."""
        if happened:
            self.reset()
        else:
            self.idle()
