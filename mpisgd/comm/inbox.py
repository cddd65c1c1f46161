"""The receiving side of the messenger, and the synchronous exchange.

- ``receive()`` takes every message that has arrived with matched probes
  (``Improbe``, then a non-blocking matched receive: no other receive can
  take a probed message), never waiting: a large message from a slow peer
  is received in the background and returned by a later call once all of
  it is here (a blocking receive would stall this rank for the peer's
  transmission time).
- ``receive_one()`` waits for one message from a known peer, polling with
  a back-off (MPICH's blocking probe would spin on a core that the peer may
  need to compute the answer).
- ``newest()`` keeps each (source, tag)'s newest message.
- ``exchange()`` is the synchronous pattern: post receives from known
  peers and sends to known peers, wait for all (a blocking ``Waitall``:
  every partner is in the same round).

Counter: ``received_from[peer]``. A receive that fails (MPICH: the sender's
process died while its message was being copied) is dropped and its source
noted in ``broken`` (rank -> the error), so that a master-worker server can
count that worker lost instead of failing itself.
"""

import numpy as np

from .backoff import LONGEST_S, Backoff
from .message import Framing
from .mpi import MPI


class Inbox:
    """Receives on a Communicator; ``isend(peer, tag, data)`` posts the sends of ``exchange()``."""

    def __init__(self, comm, framing: Framing, isend):
        self.comm, self.mpi = comm, comm.mpi
        self.framing, self.isend = framing, isend
        self.received_from = np.zeros(comm.size, dtype=np.int64)
        self.arriving = []  # [request, source, tag, data]: probed, still being received
        self.arrived = []  # complete messages not yet returned (another tag or source was asked for)
        self.broken = {}  # source -> the MPI error that failed a receive from it (its later messages are dropped)

    def _count(self, source: int, tag: int, data):
        self.received_from[source] += 1
        self.comm.stats.count(0, data.nbytes)
        return self.framing.unpack(source, tag, data)

    def _poll(self) -> None:
        """Move the receives that have completed into ``arrived``, keeping each source's order (MPI's
        non-overtaking rule): a message waits while an older one from its source is still arriving, so
        a peer's last message (a master-worker ``LEAVE``) is never handled before its earlier ones."""
        if self.arriving:
            still, waiting = [], set()
            for entry in self.arriving:
                if entry[1] in self.broken:
                    continue
                if entry[1] not in waiting and self._test(entry):
                    self.arrived.append(self._count(*entry[1:]))
                elif entry[1] not in self.broken:
                    waiting.add(entry[1])
                    still.append(entry)
            self.arriving = still

    def _test(self, entry) -> bool:
        """Whether ``entry``'s receive is complete; a failed one breaks its source (False)."""
        try:
            return entry[0].Test()
        except MPI.Exception as error:
            self._break(entry[1], error)
            return False

    def _break(self, source: int, error) -> None:
        """A receive from ``source`` failed (its process died mid-send): note the innermost cause."""
        details = [line.split(":", 1)[-1].strip() for line in str(error).splitlines()]
        self.broken[source] = next((d for d in reversed(details) if d), "MPI error")

    def _pick(self, tag: int, source: int) -> list:
        """The arrived messages that match (``MPI.ANY_*``: any), removed from ``arrived``."""
        match, keep = [], []
        for m in self.arrived:
            wanted = (tag == MPI.ANY_TAG or m.tag == tag) and (source == MPI.ANY_SOURCE or m.source == source)
            (match if wanted else keep).append(m)
        self.arrived = keep
        return match

    def _take(self, matched, status):
        data = np.empty(status.Get_count(MPI.BYTE) // self.framing.dtype.itemsize, dtype=self.framing.dtype)
        matched.Recv(data)
        return self._count(status.Get_source(), status.Get_tag(), data)

    def receive(self, tag: int = None, source: int = None, *, patience: int = 1) -> list:
        """Every matching message that has arrived, oldest first; never waits.

        Stops after ``patience`` probes in a row that find nothing. An MPI
        library may answer "nothing" before the progress poll that brings
        the next waiting message in (MPICH's ch4 ``Improbe`` does), so a
        drain of many small messages should ask for a few (DivShare: 4)."""
        tag = MPI.ANY_TAG if tag is None else tag
        source = MPI.ANY_SOURCE if source is None else source
        status, misses = MPI.Status(), 0
        while misses < patience:
            matched = self.mpi.Improbe(source=source, tag=tag, status=status)
            if matched is None:
                misses += 1
                continue
            misses = 0
            data = np.empty(status.Get_count(MPI.BYTE) // self.framing.dtype.itemsize, dtype=self.framing.dtype)
            self.arriving.append([matched.Irecv(data), status.Get_source(), status.Get_tag(), data])
        self._poll()
        return self._pick(tag, source)

    def receive_one(self, source: int, tag: int, *, while_waiting=None, timeout: float = None,
                    longest: float = LONGEST_S):
        """Wait for one message from ``source`` with ``tag`` (time counted as blocked).

        Polls, backing off while nothing arrives (sleeps up to ``longest``
        seconds); ``while_waiting()`` runs between polls (e.g. the outbox's
        progress; True when it did something)."""
        status = MPI.Status()
        backoff = Backoff(longest=longest, timeout=timeout, what=f"receiving tag {tag} from rank {source}")
        with self.comm.stats.blocked():
            while True:
                self._poll()  # a receive() may have begun taking it already
                ready = self._pick(tag, source)
                if ready:
                    self.arrived = ready[1:] + self.arrived
                    return ready[0]
                if not any(e[1] == source and e[2] == tag for e in self.arriving):
                    matched = self.mpi.Improbe(source=source, tag=tag, status=status)
                    if matched is not None:
                        try:
                            return self._take(matched, status)
                        except MPI.Exception as error:  # the sender died mid-send
                            self._break(source, error)
                            if while_waiting is None:
                                raise  # nobody here can tell a lost peer: the error ends the job
                            # else while_waiting() finds the source in ``broken`` (a lost peer)
                backoff.after(while_waiting is not None and while_waiting())

    @staticmethod
    def newest(messages) -> dict:
        """The newest message per (source, tag): a peer's older models are superseded."""
        return {(m.source, m.tag): m for m in messages}

    def exchange(self, sends: dict, receive_from, tag: int, length: int, header=()) -> dict:
        """Send ``sends[peer]`` to each peer and receive one ``length``-long payload from each of
        ``receive_from``.

        All receives and sends are posted, then waited for together; the time
        counts as blocked. Returns ``{peer: Message}``.
        """
        buffers = {peer: self.framing.empty(length) for peer in receive_from}
        requests = [self.mpi.Irecv(buffer, source=peer, tag=tag) for peer, buffer in buffers.items()]
        packed = {peer: self.framing.pack(payload, header) for peer, payload in sends.items()}
        requests += [self.isend(peer, tag, data) for peer, data in packed.items()]
        with self.comm.stats.blocked():
            MPI.Request.Waitall(requests)
        for peer, data in buffers.items():
            self.received_from[peer] += 1
            self.comm.stats.count(0, data.nbytes)
        return {peer: self.framing.unpack(peer, tag, data) for peer, data in buffers.items()}
