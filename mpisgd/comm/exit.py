"""The messenger's exit protocol: no rank waits for a peer that has finished, no message is left behind.

Ranks of an asynchronous algorithm stop at different times, with messages
still queued, in flight or unreceived. :func:`leave` is collective over the
communicator:

1. Drop what is still queued (unless ``drop_queued=False``: answers a peer
   waits for must be delivered), complete this rank's sends, handling
   arriving messages meanwhile with ``serve(message)`` (a passive AD-PSGD
   worker still answers; others may just discard).
2. A non-blocking barrier, still serving, so nobody blocks while a peer
   may need an answer; then the sends those answers started.
3. All-to-all of how many messages each rank posted to (and meant for)
   each other rank; receive until every one of them has arrived. Nothing
   is left in flight or unreceived.

Every wait polls with a :class:`~mpisgd.comm.backoff.Backoff`, so a rank
that is done does not take the core of a peer still computing. With
``survivors`` (a :class:`~mpisgd.comm.survivors.Survivors`) the barrier and
the all-to-all run among its members only, and every poll checks that none
died (:class:`~mpisgd.comm.survivors.PeerLost`: run it again after a shrink).
"""

import time
from dataclasses import dataclass

import numpy as np

from .backoff import Backoff


@dataclass
class Departure:
    """What :func:`leave` found: the messages it drained, and the delivery accounting."""

    drained: int  # messages received during the exit protocol
    arrived_before: np.ndarray  # messages received from each peer before leaving started
    expected: np.ndarray  # messages each peer meant for this rank (queued, incl. replaced or dropped)


def leave(messenger, *, serve=None, timeout: float = 120.0, drop_queued: bool = True,
          survivors=None) -> Departure:
    """Run the exit protocol on ``messenger`` (its send/receive/progress interface); collective."""
    stats = messenger.comm.stats
    start, progress_before = time.perf_counter(), stats.progress_s
    arrived_before = messenger.received_from.copy()
    if drop_queued:
        messenger.drop_queued()
    backoff = Backoff(timeout=timeout, what="messenger close()")
    drained = 0

    def serve_arrivals() -> bool:
        nonlocal drained
        messages = messenger.receive()
        for message in messages:
            if serve is not None:
                serve(message)
        drained += len(messages)
        return messenger.progress() or bool(messages)

    def wait(done) -> None:
        while not done():
            if survivors is not None:
                survivors.check()
            backoff.after(serve_arrivals())

    wait(lambda: not messenger.pending())
    collective = messenger.mpi if survivors is None else survivors.comm.mpi
    members = slice(None) if survivors is None else survivors.members
    barrier = collective.Ibarrier()
    if survivors is not None:  # kept: abandoned if a member dies before it completes
        survivors.abandoned.append((barrier, None))
    wait(barrier.Test)
    wait(lambda: not messenger.pending())  # answers given while waiting in the barrier
    counts = np.stack([messenger.sent_to, messenger.meant_for], axis=1)
    part, gathered, received = np.ascontiguousarray(counts[members]), np.zeros_like(counts[members]), \
        np.zeros_like(counts)
    collective.Alltoall(part, gathered)
    received[members] = gathered
    wait(lambda: np.all(messenger.received_from >= received[:, 0]))
    stats.wait_s += time.perf_counter() - start - (stats.progress_s - progress_before)
    return Departure(drained, arrived_before, received[:, 1])
