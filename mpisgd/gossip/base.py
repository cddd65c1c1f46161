"""What every gossip algorithm shares, synchronous pairwise rounds and asynchronous ones alike.

- ``topology`` (parsed once into ``self.graph``; one rank has no peers, so
  every kind of graph degenerates to ``full`` there) and ``gossip_seed``:
  rank ``r`` draws its random peer choices from the stream ``(seed, r)``
  (``self.rng``);
- ``self.host``: this rank's model on the host, the buffer messages are
  built from and averaged into;
- ``self.messenger``: the peer-to-peer :class:`~mpisgd.comm.Messenger`,
  built from :meth:`GossipAlgorithm.messenger_options` (a hook: the header
  size and in-flight cap a family or algorithm needs). A slow uplink is
  plugged in from outside: ``algorithm.messenger.throttle = Throttle(rate)``;
- leaving: ``finish()`` runs the messenger's exit protocol (serving late
  messages with :meth:`serve`) and averages the models once (one
  all-reduce), ``close()`` leaves if that has not happened yet;
- ``record``: an opt-in log of this rank's communication events (off by
  default: ``None``, one attribute test per event). Set
  ``algorithm.record = []`` and each event is appended as an :class:`Event`,
  so that a test can replay the schedule an asynchronous or randomized run
  took (which peer, which message, stamped with which step) in a reference
  written from the paper. What each algorithm logs is in its docstring.
- a lost rank (``kill -9``, under a launch that survives it: docs/failures.md):
  ``self.survivors`` (:class:`~mpisgd.comm.survivors.Survivors`) knows the
  ranks still alive. After every step (and in every wait) this rank asks the
  MPI library, at most every 0.5 s, which ranks failed, or notes a receive
  that failed; a lost rank leaves :meth:`neighbours` (so every peer choice),
  its queued and posted messages are forgotten and :meth:`forget` drops what
  the algorithm keeps of it. The collectives (a synchronous round's
  all-gather, the exit protocol, the final average) run among the survivors.
"""

from typing import NamedTuple, Optional

import numpy as np

from ..algorithm import Algorithm, Option
from ..comm import Messenger
from ..comm.survivors import Survivors
from .topology import parse_topology


class Event(NamedTuple):
    """One communication event of a rank, as ``GossipAlgorithm.record`` logs it."""

    step: int  # this rank's step count when it happened (local steps completed)
    kind: str  # what happened, e.g. "choose", "average", "serve", "send", "fragment"
    peer: int  # the other rank (-1: none)
    stamp: int  # the step the message was stamped with by its sender (own step for what it sends)
    fragment: Optional[int] = None  # DivShare: the fragment id


class GossipAlgorithm(Algorithm):
    """Base class of the gossip families (:mod:`.pairwise`, :mod:`.asynchronous`)."""

    options = {
        "topology": Option("full", "peer graph: full, ring, torus, exponential, regular:D, ... "
                                   "(see docs/topologies.md)"),
        "gossip_seed": Option(0, "seed of the random peer choices (rank r uses the stream (seed, r))"),
    }
    header_size = 1  # values sent along with each model
    max_in_flight = 1  # posted sends per peer; more are queued (newest only)
    drop_on_close = True  # queued messages are stale models when a rank leaves
    record = None  # opt-in schedule log: a list to append Events to (None: nothing is recorded)

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        topology = self.topology if self.comm.size > 1 else "full"
        self.graph = parse_topology(topology, self.comm.size, self.gossip_seed)
        self.rng = np.random.default_rng([self.gossip_seed, self.comm.rank])
        self.host = self.flat.backend.host_buffer(self.flat.params)  # this rank's model, on the host
        self.messenger = Messenger(self.comm, **self.messenger_options())
        self.survivors = Survivors(self.comm)
        self.forgotten = set()  # the lost ranks this rank has excluded (notice())
        self.finished = False

    def messenger_options(self) -> dict:
        """Keyword arguments of the :class:`~mpisgd.comm.Messenger` (override to change the cap or header)."""
        return {"dtype": self.flat.backend.numpy_dtype(self.flat.params), "header_size": self.header_size,
                "max_in_flight": self.max_in_flight}

    def neighbours(self) -> list:
        """This rank's topology neighbours at this step, less the ranks lost."""
        lost = self.survivors.lost
        return [n for n in self.graph.neighbors(self.comm.rank, step=self.steps) if n not in lost]

    def notice(self) -> list:
        """Exclude the ranks newly found lost (asking the library at most every 0.5 s); returns them."""
        self.survivors.notice(self.messenger.inbox.broken)
        new = [rank for rank in self.survivors.lost if rank not in self.forgotten]  # a shrink marks some too
        for rank in new:
            self.forgotten.add(rank)
            self.messenger.forget(rank)
            self.forget(rank)
        return new

    def forget(self, rank: int) -> None:
        """Hook: ``rank`` is lost; drop what the algorithm keeps of it (default: nothing)."""

    def check_peers(self) -> None:
        """In a wait: notice lost ranks, and PeerLost when one is a member of the collectives."""
        self.notice()
        self.survivors.check()

    def after_step(self) -> None:
        self.notice()
        super().after_step()

    def model_to_host(self) -> np.ndarray:
        self.flat.backend.to_host(self.flat.params, self.host)
        return self.host

    def host_to_model(self) -> None:
        self.flat.backend.from_host(self.host, self.flat.params)

    def log(self, kind: str, peer: int, stamp: int, fragment: Optional[int] = None) -> None:
        """Append an :class:`Event` at this rank's current step to ``record`` (when recording)."""
        if self.record is not None:
            self.record.append(Event(self.steps, kind, int(peer), int(stamp), fragment))

    def serve(self, message) -> None:
        """A message arriving while this rank is leaving (default: discarded)."""

    def leave(self) -> None:
        """The messenger's exit protocol, once, among the survivors (again after a shrink)."""
        if not self.finished:
            survivors = self.survivors

            def close():
                self.notice()  # forget the sends to a rank lost since the last step
                return self.messenger.close(serve=self.serve, drop_queued=self.drop_on_close, survivors=survivors)

            survivors.run(close, poll=self.serve_arrivals)
            self.finished = True

    def serve_arrivals(self) -> bool:
        """While the survivors gather for a shrink: serve what arrives, advance the outbox."""
        messages = self.messenger.receive()
        for message in messages:
            self.serve(message)
        return self.messenger.progress() or bool(messages)

    def finish(self) -> None:
        self.leave()
        self.survivors.comm.allreduce(self.flat.params, average=True)

    def close(self) -> None:
        self.leave()
        self.survivors.free()
        super().close()
