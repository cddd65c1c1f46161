"""Point-to-point model traffic between peers, shared by every gossip algorithm.

- Messages are flat host arrays (a model, or a fragment of one) with a
  small header (e.g. the sender's step) appended, sent with one buffer
  ``Isend`` each; the payload is copied once into a buffer the messenger
  owns until the send completes.
- The outbox is application level: at most ``max_in_flight`` sends are
  posted per peer; others wait in a queue where a newer message for the
  same (peer, tag) replaces the older one, and ``drop_queued()`` discards
  stale ones (cancelling posted sends is deprecated in MPI 4, so nothing
  posted is ever cancelled).
- ``receive()`` takes every message that has arrived, with matched probes
  (``Improbe`` + ``Mrecv``), never waiting.
- ``exchange()`` is the synchronous pattern (post receives from known
  peers, send to known peers, wait for all).
- A slow uplink can be emulated (``seconds_per_byte``): messages leave one
  at a time, each after ``bytes * seconds_per_byte`` seconds of
  "transmission", so the receiver sees them when a real slow link would
  deliver them.
- ``close()`` is the exit protocol: no rank ever waits for a peer that has
  finished, and no message is left behind.
"""

import collections
import time
from dataclasses import dataclass

import numpy as np
from .mpi import MPI

from ..errors import MPISGDError


@dataclass
class Message:
    source: int
    tag: int
    data: np.ndarray  # the payload (a view)
    header: np.ndarray  # the values sent along (e.g. the sender's step)


class Messenger:
    """Peer-to-peer messages on a :class:`~mpisgd.comm.Communicator` (counted in its statistics)."""

    def __init__(self, comm, *, dtype=np.float64, header_size: int = 1, max_in_flight: int = 1,
                 seconds_per_byte: float = 0.0):
        self.comm, self.mpi = comm, comm.mpi
        self.dtype, self.header_size = np.dtype(dtype), header_size
        self.max_in_flight, self.seconds_per_byte = max_in_flight, seconds_per_byte
        self.queue = collections.OrderedDict()  # (peer, tag) -> data, oldest first
        self.in_flight = collections.defaultdict(list)  # peer -> [(request, data)]
        self.transmitting = None  # (peer, tag, data, done_at) on the emulated slow link
        self.sent_to = np.zeros(comm.size, dtype=np.int64)  # posted
        self.meant_for = np.zeros(comm.size, dtype=np.int64)  # queued by the algorithm (incl. replaced, dropped)
        self.received_from = np.zeros(comm.size, dtype=np.int64)
        self.arrived_before_close = None
        self.expected = None  # after close(): messages each peer meant for this rank
        self.dropped = 0
        self.closed = False

    # -- sending ------------------------------------------------------------
    def pack(self, payload, header=()) -> np.ndarray:
        """A message buffer: a host copy of ``payload`` with ``header`` appended."""
        data = np.empty(len(payload) + self.header_size, dtype=self.dtype)
        data[: len(payload)] = payload
        data[len(payload):] = np.resize(np.asarray(header, dtype=self.dtype), self.header_size)
        return data

    def send(self, peer: int, tag: int, payload, header=()) -> None:
        """Queue a copy of ``payload`` for ``peer``; a queued older message with this tag is replaced."""
        if self.closed:
            raise MPISGDError("send() after close()")
        key = (peer, tag)
        self.meant_for[peer] += 1
        if key in self.queue:
            self.dropped += 1
        self.queue[key] = self.pack(payload, header)
        self.progress()

    def drop_queued(self, *, keep_transmitting: bool = False) -> int:
        """Forget every message not yet on its way (stale models); returns how many.

        The message on the emulated slow link is forgotten too, unless
        ``keep_transmitting`` (a real link would finish it: the way to drop
        stale messages every round, so that a slow sender still delivers)."""
        count = len(self.queue)
        self.queue.clear()
        if self.transmitting is not None and not keep_transmitting:
            self.transmitting = None
            count += 1
        self.dropped += count
        return count

    def _post(self, peer, tag, data) -> None:
        request = self.mpi.Isend(data, dest=peer, tag=tag)
        self.in_flight[peer].append((request, data))
        self.sent_to[peer] += 1
        self.comm.stats.count(data.nbytes, 0)

    def progress(self) -> None:
        """Retire completed sends and start queued ones (as far as the caps and the link allow)."""
        start = time.perf_counter()
        for peer, flights in self.in_flight.items():
            if flights:
                flights[:] = [(r, d) for r, d in flights if not r.Test()]
        if self.transmitting is not None and time.perf_counter() >= self.transmitting[3]:
            peer, tag, data, _ = self.transmitting
            self._post(peer, tag, data)
            self.transmitting = None
        for key in list(self.queue):
            peer, tag = key
            if len(self.in_flight[peer]) >= self.max_in_flight:
                continue
            if self.seconds_per_byte > 0:
                if self.transmitting is not None:
                    break
                data = self.queue.pop(key)
                self.transmitting = (peer, tag, data, time.perf_counter() + data.nbytes * self.seconds_per_byte)
                break
            self._post(peer, tag, self.queue.pop(key))
        self.comm.stats.progress_s += time.perf_counter() - start

    def pending(self) -> int:
        """Messages queued, on the emulated link or posted and not yet complete."""
        return len(self.queue) + (self.transmitting is not None) + sum(map(len, self.in_flight.values()))

    # -- receiving ----------------------------------------------------------
    def _take(self, matched, status) -> Message:
        data = np.empty(status.Get_count(MPI.BYTE) // self.dtype.itemsize, dtype=self.dtype)
        matched.Recv(data)
        source, tag = status.Get_source(), status.Get_tag()
        self.received_from[source] += 1
        self.comm.stats.count(0, data.nbytes)
        cut = len(data) - self.header_size
        return Message(source, tag, data[:cut], data[cut:])

    def receive(self, tag: int = None, source: int = None, *, patience: int = 1) -> list:
        """Every matching message that has arrived, oldest first; never waits.

        Stops after ``patience`` probes in a row that find nothing. An MPI
        library may answer "nothing" before the progress poll that brings
        the next waiting message in (MPICH's ch4 ``Improbe`` does), so a
        drain of many small messages should ask for a few (DivShare: 4)."""
        tag = MPI.ANY_TAG if tag is None else tag
        source = MPI.ANY_SOURCE if source is None else source
        messages, status, misses = [], MPI.Status(), 0
        while misses < patience:
            matched = self.mpi.Improbe(source=source, tag=tag, status=status)
            if matched is None:
                misses += 1
                continue
            misses = 0
            messages.append(self._take(matched, status))
        return messages

    def receive_one(self, source: int, tag: int) -> Message:
        """Wait for one message from ``source`` with ``tag`` (time counted as blocked)."""
        status = MPI.Status()
        with self.comm.stats.blocked():
            matched = self.mpi.Mprobe(source=source, tag=tag, status=status)
        return self._take(matched, status)

    @staticmethod
    def newest(messages) -> dict:
        """The newest message per (source, tag): a peer's older models are superseded."""
        return {(m.source, m.tag): m for m in messages}

    # -- the synchronous pattern ---------------------------------------------
    def exchange(self, sends: dict, receive_from, tag: int, length: int, header=()) -> dict:
        """Send ``sends[peer]`` to each peer and receive one ``length``-long payload from each of
        ``receive_from``.

        All receives and sends are posted, then waited for together; the time
        counts as blocked. Returns ``{peer: Message}``.
        """
        buffers = {peer: np.empty(length + self.header_size, dtype=self.dtype) for peer in receive_from}
        requests = [self.mpi.Irecv(buffer, source=peer, tag=tag) for peer, buffer in buffers.items()]
        packed = [self.pack(payload, header) for payload in sends.values()]
        for peer, data in zip(sends, packed):
            requests.append(self.mpi.Isend(data, dest=peer, tag=tag))
            self.sent_to[peer] += 1
            self.comm.stats.count(data.nbytes, 0)
        with self.comm.stats.blocked():
            MPI.Request.Waitall(requests)
        out = {}
        for peer, data in buffers.items():
            self.received_from[peer] += 1
            self.comm.stats.count(0, data.nbytes)
            cut = len(data) - self.header_size
            out[peer] = Message(peer, tag, data[:cut], data[cut:])
        return out

    def delivery(self):
        """After close(): the fraction of the messages peers queued for this rank that arrived
        before it started leaving (None before close, or when nothing was meant for it)."""
        if self.expected is None or self.expected.sum() == 0:
            return None
        return float(self.arrived_before_close.sum() / self.expected.sum())

    # -- the exit protocol ---------------------------------------------------
    def close(self, serve=None, timeout: float = 120.0, drop_queued: bool = True) -> int:
        """Leave cleanly; collective over the communicator. Returns how many messages were drained.

        1. Drop what is still queued (unless ``drop_queued=False``: answers
           a peer waits for must be delivered), complete this rank's sends,
           handling arriving messages meanwhile with ``serve(message)`` (a
           passive AD-PSGD worker still answers; others may just discard).
        2. A non-blocking barrier, still serving, so nobody blocks while a
           peer may need an answer.
        3. All-to-all of how many messages each rank sent to each other
           rank; receive until every one of them has arrived. Nothing is
           left in flight or unreceived.
        """
        start = time.perf_counter()
        deadline, progress_before = start + timeout, self.comm.stats.progress_s
        self.arrived_before_close = self.received_from.copy()
        if drop_queued:
            self.drop_queued()
        drained = 0

        def serve_arrivals():
            nonlocal drained
            if time.perf_counter() > deadline:
                raise MPISGDError(f"messenger close() did not finish within {timeout} s")
            for message in self.receive():
                drained += 1
                if serve is not None:
                    serve(message)
            self.progress()

        while self.pending():
            serve_arrivals()
        barrier = self.mpi.Ibarrier()
        while not barrier.Test():
            serve_arrivals()
        while self.pending():  # answers given while waiting in the barrier
            serve_arrivals()
        counts = np.stack([self.sent_to, self.meant_for], axis=1)
        received = np.zeros_like(counts)
        self.mpi.Alltoall(counts, received)
        self.expected = received[:, 1]
        while np.any(self.received_from < received[:, 0]):
            serve_arrivals()
        self.closed = True
        elapsed = time.perf_counter() - start
        self.comm.stats.wait_s += elapsed - (self.comm.stats.progress_s - progress_before)
        return drained
