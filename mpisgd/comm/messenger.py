"""Point-to-point model traffic between peers, shared by every gossip algorithm.

The :class:`Messenger` is a thin facade over its parts, each in its own module:

- :class:`~mpisgd.comm.outbox.Outbox`: bounded per-peer in-flight sends,
  a replace-newest queue, ``drop_queued()``, ``progress()``, and the
  ``throttle`` hook (a slow uplink plugged in from outside:
  ``messenger.throttle = Throttle(bytes_per_second)``);
- :class:`~mpisgd.comm.inbox.Inbox`: matched-probe ``receive()``,
  ``receive_one()`` (waits with a back-off), ``newest()``, and the
  synchronous ``exchange()``;
- :func:`~mpisgd.comm.exit.leave`: the exit protocol behind ``close()``;
- :class:`~mpisgd.comm.message.Framing`: payload and header in one buffer
  (:class:`~mpisgd.comm.message.Message`).

Example (a ring, ``mpiexec -n 2 python -m mpi4py example.py``: send right, wait for the left)::

    import numpy
    from mpi4py import MPI
    from mpisgd.comm import Communicator, Messenger, tags

    comm = Communicator(MPI.COMM_WORLD)
    messenger = Messenger(comm, header_size=1)
    x = numpy.full(4, float(comm.rank))
    messenger.send((comm.rank + 1) % comm.size, tags.MODEL, x, header=[7])
    message = messenger.receive_one((comm.rank - 1) % comm.size, tags.MODEL)
    print(comm.rank, message.source, message.data, message.header)
    messenger.close()        # collective: nothing is left in flight
    comm.free()
"""

import numpy as np

from ..errors import MPISGDError
from .exit import leave
from .inbox import Inbox
from .message import Framing, Message
from .outbox import Outbox

__all__ = ["Message", "Messenger"]


def _part(part: str, name: str, doc: str):
    """A read-only view of the attribute ``name`` of one of the messenger's parts."""
    return property(lambda self: getattr(getattr(self, part), name), doc=doc)


class Messenger:
    """Peer-to-peer messages on a :class:`~mpisgd.comm.Communicator` (counted in its statistics)."""

    def __init__(self, comm, *, dtype=np.float64, header_size: int = 1, max_in_flight: int = 1,
                 replace: bool = True):
        """``replace``: a newer message replaces a queued one for the same peer and tag (gossip: models
        go stale); False sends every message (master-worker: updates must all arrive)."""
        self.comm, self.mpi = comm, comm.mpi
        self.framing = Framing(dtype, header_size)
        self.outbox = Outbox(comm, max_in_flight, replace=replace)
        self.inbox = Inbox(comm, self.framing, self.outbox.isend)
        self.departure = None  # what the exit protocol found, after close()
        self.closed = False

    sent_to = _part("outbox", "sent_to", "Messages posted to each peer.")
    meant_for = _part("outbox", "meant_for", "Messages queued for each peer (including replaced and dropped).")
    received_from = _part("inbox", "received_from", "Messages received from each peer.")

    @property
    def dropped(self) -> int:
        """Messages replaced or dropped before they were posted."""
        return self.outbox.dropped

    @property
    def throttle(self):
        """The slow uplink messages cross before they are posted (None: unthrottled)."""
        return self.outbox.throttle

    @throttle.setter
    def throttle(self, throttle) -> None:
        if self.outbox.pending():
            raise MPISGDError("set the messenger's throttle before it sends")
        self.outbox.throttle = throttle

    @property
    def max_in_flight(self) -> int:
        """Posted sends per peer; more wait in the queue (newest only)."""
        return self.outbox.max_in_flight

    # -- sending ------------------------------------------------------------
    def pack(self, payload, header=()) -> np.ndarray:
        """A message buffer: a host copy of ``payload`` with ``header`` appended."""
        return self.framing.pack(payload, header)

    def send(self, peer: int, tag: int, payload, header=()) -> None:
        """Queue a copy of ``payload`` for ``peer``; a queued older message with this tag is replaced."""
        if self.closed:
            raise MPISGDError("send() after close()")
        self.outbox.put(peer, tag, self.framing.pack(payload, header))

    def drop_queued(self, *, keep_transmitting: bool = False) -> int:
        return self.outbox.drop_queued(keep_transmitting=keep_transmitting)

    drop_queued.__doc__ = Outbox.drop_queued.__doc__

    def forget(self, peer: int) -> None:
        self.outbox.forget(peer)

    forget.__doc__ = Outbox.forget.__doc__

    def progress(self) -> bool:
        """Retire completed sends and start queued ones; True when anything moved."""
        return self.outbox.progress()

    def pending(self, peers=None) -> int:
        """Messages queued, on the throttle's link, or posted and not yet complete (for ``peers``: to them)."""
        return self.outbox.pending(peers)

    # -- receiving ----------------------------------------------------------
    def receive(self, tag: int = None, source: int = None, *, patience: int = 1) -> list:
        return self.inbox.receive(tag, source, patience=patience)

    receive.__doc__ = Inbox.receive.__doc__

    def receive_one(self, source: int, tag: int, check=None) -> Message:
        """Wait for one message from ``source`` with ``tag``, advancing the outbox meanwhile
        (backing off while nothing happens; time counted as blocked); ``check()`` runs between
        polls (it may raise, e.g. when ``source`` is dead)."""
        if check is None:
            return self.inbox.receive_one(source, tag, while_waiting=self.outbox.progress)
        return self.inbox.receive_one(source, tag, while_waiting=lambda: check() or self.outbox.progress())

    newest = staticmethod(Inbox.newest)

    def exchange(self, sends: dict, receive_from, tag: int, length: int, header=()) -> dict:
        return self.inbox.exchange(sends, receive_from, tag, length, header)

    exchange.__doc__ = Inbox.exchange.__doc__

    # -- the exit protocol ---------------------------------------------------
    def close(self, serve=None, timeout: float = 120.0, drop_queued: bool = True, survivors=None) -> int:
        """Leave cleanly (:func:`mpisgd.comm.exit.leave`; among ``survivors``' members when given);
        collective. Returns how many messages were drained."""
        self.departure = leave(self, serve=serve, timeout=timeout, drop_queued=drop_queued, survivors=survivors)
        self.closed = True
        return self.departure.drained

    def delivery(self):
        """After close(): the fraction of the messages peers queued for this rank that arrived
        before it started leaving (None before close, or when nothing was meant for it)."""
        if self.departure is None or self.departure.expected.sum() == 0:
            return None
        return float(self.departure.arrived_before.sum() / self.departure.expected.sum())
