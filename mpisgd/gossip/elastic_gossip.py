"""Elastic Gossip (Pramod, arXiv:1812.02407; thesis code sidps/dist_training).

Both sides of each gossip move: with ``P_i = R_i ∪ {q_i}`` (the peer this
rank chose and the ranks that chose it),

    u_i = moving_rate * (|P_i| x_i - sum_{j in P_i} x_j)       (pre-step models)

applied after the local step. Every pair contributes equal and opposite
terms, so the sum of the models is preserved; with ``moving_rate = 0.5`` and
one partner both move to the midpoint. With several partners in one round
a rank overshoots when ``moving_rate * |P_i| > 1``.

Round mechanics, options and MPI pattern: :mod:`mpisgd.gossip.pairwise`.
"""

from ..algorithm import Option, fraction, register
from .pairwise import NO_PEER, PairwiseGossip


@register
class ElasticGossip(PairwiseGossip):
    name = "elastic-gossip"
    summary = "Elastic Gossip: both partners of each gossip pulled toward each other"
    options = {**PairwiseGossip.options,
               "moving_rate": Option(0.5, "elastic moving rate alpha of each pair", fraction)}

    def partners(self, peer, requesters):
        group = sorted(set(requesters) | ({peer} if peer != NO_PEER else set()))
        return group, group

    def correction(self, received):
        if not received:
            return None
        return self.moving_rate * (len(received) * self.before - sum(received.values()))
