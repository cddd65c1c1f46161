"""Gossiping SGD (Jin et al. 2016, as implemented in the Elastic Gossip thesis code).

``pull`` (the thesis's variant): the initiator moves halfway to its peer's
pre-step model, ``u_i = (x_i - x_q) / 2``; the peer only sends. Rows of the
averaging operator sum to one; the global mean is not preserved.

``push`` [reconstructed]: the initiator sends its model; every rank averages
itself with what it received, ``x_i <- (x_i + sum_{j in R_i} x_j) / (1 + |R_i|)``.

Round mechanics, options and MPI pattern: :mod:`mpisgd.gossip.pairwise`.
"""

from ..algorithm import Option, one_of, register
from .pairwise import NO_PEER, PairwiseGossip


@register
class GossipingSGD(PairwiseGossip):
    name = "gossip"
    summary = "Gossiping SGD: each rank averages with a random neighbour (pull or push)"
    options = {**PairwiseGossip.options,
               "variant": Option("pull", "pull: the initiator moves to the midpoint; push: receivers average",
                                 one_of("pull", "push"))}

    def partners(self, peer, requesters):
        chosen = [] if peer == NO_PEER else [peer]
        return (requesters, chosen) if self.variant == "pull" else (chosen, requesters)

    def correction(self, received):
        if not received:
            return None
        if self.variant == "pull":
            return (self.before - received[self.peer]) / 2
        total = sum(received.values())
        return (len(received) * self.before - total) / (1 + len(received))
