"""Synchronous pairwise gossip rounds, shared by Gossiping SGD and Elastic Gossip.

Per gossip step (ALGORITHMS.md §6.1, the Elastic Gossip thesis code):

1. with probability ``gossip_prob`` each rank picks a peer ``q_i`` uniformly
   among its topology neighbours (else none);
2. one ``Allgather`` of the choices tells each rank its requesters
   ``R_i = {j : q_j = i}`` (it also acts as the round's barrier);
3. the pre-step models travel between the partners the variant needs
   (``Messenger.exchange``: receives and sends posted together, then
   waited for; every partner is in the same round);
4. after the local step, ``x_i <- x_i - u_i`` with the variant's correction
   ``u_i`` computed from the pre-step models.

A lost rank (:mod:`mpisgd.gossip.base`): it is no longer chosen, the
all-gather of step 2 runs among the survivors (a round waiting for the dead
rank is abandoned and run again among the others; its entry reads "no
peer"), and a rank whose choice died before the round treats it as "none".
A rank dying between the all-gather and the exchange is not handled.

Subclasses say whom to exchange with (``partners``) and what the
correction is (``correction``). No staleness: rounds are synchronous.
Recorded schedule (``record``, :mod:`mpisgd.gossip.base`): one event
``("choose", q_i, stamp = step)`` per gossip step (``q_i = -1``: none);
everything else in the round follows from every rank's choice.
Set-up and ``finish()`` (one all-reduce average): :mod:`mpisgd.gossip.base`.
"""

import numpy as np

from ..algorithm import Option, fraction, positive
from ..comm import UsageError, tags
from .base import GossipAlgorithm

NO_PEER = -1


class PairwiseGossip(GossipAlgorithm):
    """Base class: peer choice, the exchange of pre-step models, the correction after the step."""

    options = {
        **GossipAlgorithm.options,
        "gossip_prob": Option(1.0, "probability that a rank starts a gossip on a gossip step", fraction),
        "gossip_period": Option(1, "steps between gossip steps", positive),
    }

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        if self.graph.directed:
            raise UsageError(f"{self.name} exchanges models both ways: topology {self.topology!r} is directed "
                             "(use an undirected one, e.g. exponential:undirected)")
        self.round = None  # (received messages) of the gossip step in progress
        self.gossips = 0

    @property
    def before(self) -> np.ndarray:
        """x_i: this rank's pre-step model (the host buffer, filled in ``before_step``)."""
        return self.host

    def partners(self, peer: int, requesters: list):
        """(ranks to send the pre-step model to, ranks to receive one from)."""
        raise NotImplementedError

    def correction(self, received: dict) -> np.ndarray:
        """``u_i`` from ``self.before`` (x_i) and the received models ``{rank: x_j}``; None: no change."""
        raise NotImplementedError

    def choose_peer(self) -> int:
        neighbours = self.neighbours()
        if not neighbours or self.rng.random() >= self.gossip_prob:
            return NO_PEER
        return int(self.rng.choice(neighbours))

    def before_step(self) -> None:
        if self.steps % self.gossip_period:
            return
        peer = self.choose_peer()
        self.log("choose", peer, self.steps)
        choices = self.survivors.allgather(np.array([peer], dtype=np.int64), fill=NO_PEER)[:, 0]
        if peer in self.survivors.lost:  # found lost while gathering: this rank gossips with nobody
            peer = NO_PEER
        requesters = [int(j) for j in np.flatnonzero(choices == self.comm.rank)]
        send_to, receive_from = self.partners(peer, requesters)
        before = self.model_to_host()
        received = self.messenger.exchange({j: before for j in send_to}, receive_from, tags.MODEL,
                                           length=len(before))
        self.round = {j: message.data for j, message in received.items()}
        self.peer, self.requesters = peer, requesters

    def after_step(self) -> None:
        if self.round is not None:
            update = self.correction(self.round)
            if update is not None:
                self.flat.params -= self.flat.backend.from_numpy(update, self.flat.params)
                self.gossips += 1
            self.round = None
        super().after_step()

    def statistics(self) -> dict:
        return {**super().statistics(), "gossips": self.gossips}
