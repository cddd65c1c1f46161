"""A slow uplink, plugged into a messenger from outside (straggler experiments).

The transport itself has no experiment knobs; a benchmark or a test that
wants one rank behind a slow link sets ``messenger.throttle =
Throttle(bytes_per_second)`` on that rank (``None``, the default: no
throttle). The throttle models a FIFO link: messages leave one at a time,
in the order the outbox hands them over, and each one is "on the link" for
its transmission time ``nbytes / bytes_per_second`` before it is posted to
MPI, so the receiver sees it no earlier than a real slow link would deliver
it. The link starts the next message when the outbox next makes progress.
(For slow links between nodes with latency and shared bandwidth, use the
emulated cluster instead: ``mpisgd.bench.cluster``.)

Example::

    >>> link = Throttle(1e6)             # 1 MB/s
    >>> link.start(1, 7, b"x" * 500, now=0.0)
    >>> link.finished(now=0.0004) is None, link.busy
    (True, True)
    >>> link.finished(now=0.0005)[:2], link.busy
    ((1, 7), False)
"""

import time


class Throttle:
    """A FIFO uplink of ``bytes_per_second``: one message at a time, each for ``nbytes / rate`` seconds."""

    def __init__(self, bytes_per_second: float):
        if isinstance(bytes_per_second, bool) or not bytes_per_second > 0:
            raise ValueError(f"a throttle needs a positive rate in bytes per second, got {bytes_per_second!r}")
        self.bytes_per_second = float(bytes_per_second)
        self.on_link = None  # (peer, tag, data) being transmitted
        self.done_at = None  # time.perf_counter() when its transmission ends
        self.transmitted = 0  # messages that went through

    @property
    def busy(self) -> bool:
        return self.on_link is not None

    def seconds(self, nbytes: int) -> float:
        """Transmission time of ``nbytes``."""
        return nbytes / self.bytes_per_second

    def start(self, peer: int, tag: int, data, *, now: float = None) -> None:
        """Put one message on the (free) link."""
        if self.busy:
            raise RuntimeError("the link is busy: one message at a time")
        now = time.perf_counter() if now is None else now
        self.on_link, self.done_at = (peer, tag, data), now + self.seconds(memoryview(data).nbytes)

    def finished(self, *, now: float = None):
        """The message whose transmission has ended, ``(peer, tag, data)``, freeing the link; else None."""
        now = time.perf_counter() if now is None else now
        if self.on_link is None or now < self.done_at:
            return None
        message, self.on_link, self.done_at = self.on_link, None, None
        self.transmitted += 1
        return message

    def drop(self) -> int:
        """Forget the message on the link (1) or do nothing (0)."""
        dropped = int(self.busy)
        self.on_link = self.done_at = None
        return dropped
