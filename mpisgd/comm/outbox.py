"""The sending side of the messenger: a bounded, newest-only outbox.

- At most ``max_in_flight`` sends are posted (``Isend``) per peer; other
  messages wait in a queue, oldest first, where a newer message for the
  same (peer, tag) replaces the queued one (a stale model is never sent
  late).
- ``drop_queued()`` discards what is not yet on its way. Nothing posted is
  ever cancelled (cancelling sends is deprecated in MPI 4).
- ``progress()`` retires completed sends and posts queued ones as far as
  the caps allow; call it during local work.
- ``throttle`` (None, or a :class:`~mpisgd.comm.Throttle` set from
  outside): a slow uplink that queued messages cross one at a time before
  they are posted.

Each buffer handed to ``put()`` belongs to the outbox until its send
completes. Counters: ``meant_for[peer]`` (every message put, including those
replaced or dropped), ``sent_to[peer]`` (posted), ``dropped``.
"""

import collections
import time

import numpy as np

from . import activity


class Outbox:
    """Bounded per-peer in-flight sends and a replace-newest queue on a Communicator."""

    def __init__(self, comm, max_in_flight: int = 1, *, replace: bool = True):
        self.comm, self.mpi = comm, comm.mpi
        self.max_in_flight = max_in_flight
        self.replace = replace  # a newer message replaces a queued one with its (peer, tag); False: all are sent
        self.sequence = 0  # distinguishes queued messages when nothing is replaced
        self.throttle = None  # a Throttle, plugged in from outside; None: unthrottled
        self.queue = collections.OrderedDict()  # (peer, tag) -> data, oldest first
        self.in_flight = collections.defaultdict(list)  # peer -> [(request, data)]
        self.sent_to = np.zeros(comm.size, dtype=np.int64)
        self.meant_for = np.zeros(comm.size, dtype=np.int64)
        self.dropped = 0
        self.abandoned = []  # posted sends to a dead peer (forget())

    def put(self, peer: int, tag: int, data: np.ndarray) -> None:
        """Queue ``data`` (a packed message) for ``peer``, replacing a queued one with this tag."""
        key = (peer, tag) if self.replace else (peer, tag, self.sequence)
        self.sequence += 1
        self.meant_for[peer] += 1
        if key in self.queue:
            self.dropped += 1
        self.queue[key] = data
        self.progress()

    def isend(self, peer: int, tag: int, data: np.ndarray):
        """Post ``data`` now, bypassing queue, caps and throttle; returns the MPI request (counted as sent)."""
        request = self.mpi.Isend(data, dest=peer, tag=tag)
        if activity.TRACE is not None:
            activity.posted("Isend", f"{data.nbytes} bytes to rank {peer}, tag {tag}")
        self.sent_to[peer] += 1
        self.comm.stats.count(data.nbytes, 0)
        return request

    def drop_queued(self, *, keep_transmitting: bool = False) -> int:
        """Forget every message not yet on its way (stale models); returns how many.

        The message on the throttle's link is forgotten too, unless
        ``keep_transmitting`` (a real link would finish it: the way to drop
        stale messages every round, so that a slow sender still delivers)."""
        count = len(self.queue)
        self.queue.clear()
        if self.throttle is not None and not keep_transmitting:
            count += self.throttle.drop()
        self.dropped += count
        return count

    def forget(self, peer: int) -> None:
        """``peer`` is dead: drop what is queued for it and stop waiting for its posted sends (which
        may never complete; kept, never freed, as MPI may still read their buffers)."""
        for key in [key for key in self.queue if key[0] == peer]:
            del self.queue[key]
            self.dropped += 1
        self.abandoned.extend(self.in_flight.pop(peer, []))

    def progress(self) -> bool:
        """Retire completed sends and start queued ones; True when anything moved."""
        start = time.perf_counter()
        moved = False
        for flights in self.in_flight.values():
            if flights:
                still = [(request, data) for request, data in flights if not request.Test()]
                moved |= len(still) < len(flights)
                flights[:] = still
        throttle = self.throttle
        if throttle is not None and (sent := throttle.finished()) is not None:
            self._post(*sent)
            moved = True
        if self.queue and (throttle is None or not throttle.busy):
            for key in list(self.queue):
                peer, tag = key[:2]
                if len(self.in_flight[peer]) >= self.max_in_flight:
                    continue
                moved = True
                if throttle is not None:  # one message at a time crosses the slow link
                    throttle.start(peer, tag, self.queue.pop(key))
                    break
                self._post(peer, tag, self.queue.pop(key))
        self.comm.stats.progress_s += time.perf_counter() - start
        return moved

    def pending(self, peers=None) -> int:
        """Messages queued, on the throttle's link, or posted and not yet complete (for ``peers``: only
        those for these peers; a message on the link counts for every peer)."""
        on_link = self.throttle is not None and self.throttle.busy
        if peers is None:
            return len(self.queue) + on_link + sum(map(len, self.in_flight.values()))
        peers = set(peers)
        queued = sum(key[0] in peers for key in self.queue)
        return queued + on_link + sum(len(self.in_flight[peer]) for peer in peers)

    def _post(self, peer, tag, data) -> None:
        self.in_flight[peer].append((self.isend(peer, tag, data), data))
