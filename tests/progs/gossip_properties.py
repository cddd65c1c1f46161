"""Gossiping SGD and Elastic Gossip properties (ALGORITHMS.md §6.1) on numpy vectors, without torch.

Long-run properties only (consensus, convex combinations, no gossip when
asked); the step-by-step check of the update rules against an independent
reference is ``oracle_gossip.py``.
"""

import numpy as np
from _common import done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.gossip import ElasticGossip, GossipingSGD

comm = world()
p, rank = comm.size, comm.rank


def start(seed=0):
    return np.random.default_rng(seed * 100 + rank).standard_normal(8)


# 1. consensus on the initial mean with alpha |P_i| < 1 (alpha 0.2, at most 4 partners here)
x = start(2)
mean = gather(comm, x).mean(axis=0)
elastic = ElasticGossip(FlatParams(x), comm=comm, moving_rate=0.2, topology="ring" if p > 2 else "full", init="keep")
for _ in range(200):
    elastic.before_step()
    elastic.after_step()
assert np.abs(gather(comm, x) - mean).max() < 1e-8, np.abs(gather(comm, x) - mean).max()

# 2. Gossiping SGD, pull: rows sum to one, so the models reach a consensus (not the mean in general)
for variant in ("pull", "push"):
    x = start(3)
    low, high = gather(comm, x).min(axis=0), gather(comm, x).max(axis=0)
    gossip = GossipingSGD(FlatParams(x), comm=comm, variant=variant, gossip_seed=5, init="keep")
    for _ in range(300):
        gossip.before_step()
        gossip.after_step()
    models = gather(comm, x)
    assert np.ptp(models, axis=0).max() < 1e-8, (variant, np.ptp(models, axis=0).max())
    assert np.all(models >= low - 1e-12) and np.all(models <= high + 1e-12)  # convex combinations

# 3. no gossip: probability 0 leaves the models alone; period 2 gossips every other step
x = start(5)
quiet = GossipingSGD(FlatParams(x), comm=comm, gossip_prob=0.0, init="keep")
before = x.copy()
for _ in range(3):
    quiet.before_step()
    quiet.after_step()
assert np.array_equal(x, before) and quiet.statistics()["gossips"] == 0
x = start(6)
sparse = ElasticGossip(FlatParams(x), comm=comm, gossip_period=2, init="keep")
for _ in range(6):
    sparse.before_step()
    sparse.after_step()
assert sparse.statistics()["gossips"] <= 3 and sparse.state_dict()["steps"] == 6
if p > 1:
    assert sparse.statistics()["bytes_sent"] > 0
for algorithm in (elastic, gossip, quiet, sparse):
    algorithm.close()
no_torch()
done(comm)
