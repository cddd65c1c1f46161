"""Independent step-by-step oracles of Gossiping SGD, Elastic Gossip, AD-PSGD, Swift and DivShare.

``oracle_gossip.py ALGORITHM [--mutate]``: every rank minimizes its own
quadratic (``_common.Quadratic``: its own A_i and b_i) from its own start
(``init="keep"``), float64, flat-vector API, plain SGD steps in numpy, with
the algorithm's hooks around each step and its schedule recorded
(``algorithm.record = []``). Every rank then gathers all models after every
step and all the recorded schedules, replays the schedule in the numpy
reference ``_gossip_reference`` (written from ALGORITHMS.md §6 to §8; it
imports nothing of mpisgd) and requires each rank's model after each step to
match it within ``TOLERANCE``. Synchronous ones (gossip, elastic-gossip)
replay the recorded peer choices; AD-PSGD the recorded averages (which
active and passive, at which steps of each); Swift the recorded sends and
the models averaged (from whom, stamped with which step; standard mode:
stored models too); DivShare the recorded fragments (from whom, stamped
with which step, which fragment). Ranks pause for different times before
each asynchronous step, so models arrive late or are superseded. Several configurations
per algorithm (topologies ring and full, variants and options).

``--mutate``: the algorithm's averaging is replaced by a no-op first
(``_mutations``); the oracle must then fail with
``differs from the reference``.
"""

import sys
import time

import _gossip_reference as reference
import _mutations
import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.gossip import ADPSGD, DivShare, ElasticGossip, GossipingSGD, Swift

TOLERANCE = 1e-12  # max abs difference of any coordinate of any rank after any step (values are O(1))
DIM, LR = 7, 0.1

comm = world()
p, rank = comm.size, comm.rank
algorithm_name = sys.argv[1]
if "--mutate" in sys.argv:
    _mutations.apply(algorithm_name)


def run(cls, steps, seed, *, pause=0.0, **options):
    """The MPI run: this rank's model after each step, its model after leaving, its recorded schedule."""
    quad = Quadratic(comm, dim=DIM, seed=seed)
    start = np.random.default_rng([seed, rank]).standard_normal(DIM) * 3
    x = start.copy()
    algorithm = cls(FlatParams(x), comm=comm, init="keep", **options)
    algorithm.record = []
    history = [x.copy()]
    for _ in range(steps):
        g = quad.grad(x)  # forward and backward, at the pre-step model
        algorithm.grad_ready(0)
        if pause:
            time.sleep(pause * (1 + rank % 3))  # ranks at different paces: an asynchronous schedule
        algorithm.before_step()
        x -= LR * g  # the local optimizer
        algorithm.after_step()
        history.append(x.copy())
    algorithm.leave()
    left = x.copy()
    algorithm.close()
    every = comm.allgather(((quad.a, quad.b), start, np.array(history), left, [tuple(e) for e in algorithm.record]))
    return [list(column) for column in zip(*every)]


def compare(label, got, expected):
    """Rank by rank, step by step; the first difference over TOLERANCE fails on every rank."""
    for i in range(p):
        for t, (mine, theirs) in enumerate(zip(got[i], expected[i])):
            error = float(np.abs(np.asarray(mine) - np.asarray(theirs)).max())
            assert error <= TOLERANCE, (
                f"{label}: rank {i} after step {t} differs from the reference by {error:.3g} (tolerance {TOLERANCE})")
        assert len(got[i]) == len(expected[i]), f"{label}: rank {i} has {len(got[i])} states, not {len(expected[i])}"


def communicated(label, records, kinds):
    """The schedule is not empty: a replay of no communication would prove nothing."""
    count = sum(1 for record in records for e in record if e[1] in kinds and e[2] >= 0)
    assert p == 1 or count > 0, f"{label}: no communication event was recorded"
    return count


def pairwise(label, cls, rule, steps, topology, seed, **options):
    quads, starts, history, _, records = run(cls, steps, seed, topology=topology, **options)
    communicated(label, records, {"choose"})
    period = options.get("gossip_period", 1)
    expected = reference.pairwise(rule, quads, starts, LR, steps, records, topology, period=period,
                                  moving_rate=options.get("moving_rate", 0.5))
    compare(label, history, expected)


if algorithm_name == "gossip":
    pairwise("gossip pull, full", GossipingSGD, "pull", 12, "full", 1)
    pairwise("gossip pull, ring, prob 0.7, period 2", GossipingSGD, "pull", 12, "ring", 2,
             gossip_prob=0.7, gossip_period=2, gossip_seed=3)
    pairwise("gossip push, ring", GossipingSGD, "push", 12, "ring", 3, variant="push")
elif algorithm_name == "elastic-gossip":
    pairwise("elastic-gossip alpha 0.5, full", ElasticGossip, "elastic", 12, "full", 4)
    pairwise("elastic-gossip alpha 0.3, ring, prob 0.7, period 2", ElasticGossip, "elastic", 12, "ring", 5,
             moving_rate=0.3, gossip_prob=0.7, gossip_period=2, gossip_seed=7)
elif algorithm_name == "adpsgd":
    for seed, steps, pause in ((6, 20, 0.0), (7, 20, 0.002)):
        label = f"adpsgd ring, pause {pause}"
        quads, starts, history, left, records = run(ADPSGD, steps, seed, pause=pause, topology="ring")
        communicated(label, records, {"average"})
        expected, expected_left = reference.adpsgd(quads, starts, LR, steps, records, "ring")
        compare(label, history, expected)
        compare(label + ", after leaving", [[v] for v in left], [[v] for v in expected_left])
elif algorithm_name == "swift":
    for topology, weights, mode, boost, period, seed in (
            ("full", "metropolis", "memory-efficient", False, 1, 10),
            ("path", "uniform", "memory-efficient", True, 1, 11),  # irregular on 4 ranks: uniform != metropolis
            ("path", "metropolis", "standard", False, 2, 12),
            ("ring", "uniform", "standard", False, 1, 13)):
        label = f"swift {topology}, {weights}, {mode}{', boost' if boost else ''}, avg_period {period}"
        quads, starts, history, _, records = run(Swift, 24, seed, pause=0.001, topology=topology, weights=weights,
                                                 mode=mode, boost=boost, avg_period=period)
        used = communicated(label, records, {"average"})
        expected = reference.swift(quads, starts, LR, 24, records, topology, mode=mode, weights=weights,
                                   boost=boost, period=period)
        compare(label, history, expected)
        if rank == 0:
            sent = sum(1 for record in records for e in record if e[1] == "send")
            lags = [e[0] - e[3] for record in records for e in record if e[1] == "average"]
            stored = sum(1 for record in records for e in record if e[1] == "stored")
            print(f"{label}: {used} of {sent} models sent averaged (step lag {min(lags)} to {max(lags)}), "
                  f"{stored} stored models reused, replayed exactly", flush=True)
elif algorithm_name == "divshare":
    for topology, count, peers, period, seed in (("full", 3, 2, 1, 8), ("ring", 2, 3, 2, 9)):
        label = f"divshare {topology}, fragments {count}, peers {peers}, local steps {period}"
        quads, starts, history, _, records = run(DivShare, 24, seed, pause=0.001, topology=topology,
                                                 fragments=count, peers=peers, local_steps=period, gossip_seed=seed)
        used = communicated(label, records, {"fragment"})
        expected = reference.divshare(quads, starts, LR, 24, records, topology, count=count, peers=peers,
                                      period=period, seed=seed)
        compare(label, history, expected)
        if rank == 0:
            print(f"{label}: {used} fragment copies averaged, replayed exactly", flush=True)
else:
    raise SystemExit(f"unknown algorithm {algorithm_name!r}")
no_torch()
done(comm)
