"""Swift, DivShare and AD-PSGD oracles (ALGORITHMS.md §6.2, §7, §8.4) on numpy vectors, without torch.

DivShare and AD-PSGD: long-run properties only here (partition, consensus,
conserved sum); their step-by-step check against an independent reference
replaying the recorded schedule is ``oracle_gossip.py``.
"""

import time

import numpy as np
from _common import done, gather, no_torch, world
from mpi4py import MPI

from mpisgd import FlatParams
from mpisgd.comm import Messenger
from mpisgd.gossip import ADPSGD, DivShare, Swift, fragment_indices

comm = world()
p, rank = comm.size, comm.rank


def start(seed):
    return np.random.default_rng(seed * 100 + rank).standard_normal(40)


def wait_for(algorithm, count):
    """Receive until `count` newest (sender, tag) messages are in hand (a test-only synchronization)."""
    inbox, deadline = {}, time.time() + 30
    while len(inbox) < count:
        assert time.time() < deadline, f"only {len(inbox)} of {count} messages arrived"
        algorithm.progress()
        inbox.update(Messenger.newest(algorithm.messenger.receive()))
    return inbox


def leave_cleanly(algorithm):
    algorithm.leave()
    assert not algorithm.messenger.mpi.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "a message was left behind"


# DivShare 1: the fragments partition the indices, equal sizes but the last (2 and 3: oracle_gossip.py)
parts = fragment_indices(103, 4, seed=9)
assert sorted(np.concatenate(parts).tolist()) == list(range(103))
assert [len(q) for q in parts] == [25, 25, 25, 28]
# DivShare 4 and Swift: learning rate 0, repeated rounds: the models reach a consensus
for algorithm_class, options in ((DivShare, {"fragments": 4, "peers": 2}), (Swift, {})):
    x = start(4)
    spread = np.ptp(gather(comm, x), axis=0).max()
    algorithm = algorithm_class(FlatParams(x), comm=comm, init="keep", **options)
    for _ in range(300):
        algorithm.before_step()
        algorithm.after_step()
        comm.Barrier()  # the test keeps the ranks in step (the algorithms themselves never wait)
    leave_cleanly(algorithm)
    stats = algorithm.statistics()
    assert stats["delivery"] is None or 0 < stats["delivery"] <= 1, stats
    after = np.ptp(gather(comm, x), axis=0).max()
    assert p == 1 or after < 1e-3 * spread, (algorithm_class.name, spread, after)

# Swift 5: with every neighbour's model delivered the average is W x (full graph: every weight is 1/p)
x = start(5)
models = gather(comm, x)
swift = Swift(FlatParams(x), comm=comm, init="keep")
for peer in swift.neighbours():
    swift.messenger.send(peer, 1, swift.model_to_host(), header=swift.stamp())
swift.mix(wait_for(swift, len(swift.neighbours())))  # test-only: the delivered models
expected = models.mean(axis=0)
assert np.abs(x - expected).max() < 1e-12
leave_cleanly(swift)

# AD-PSGD 6: atomic pairwise averages keep the sum of the models; lr 0: consensus on the initial mean
x = start(6)
total = gather(comm, x).sum(axis=0)
adpsgd = ADPSGD(FlatParams(x), comm=comm, init="keep")
for _ in range(200):
    adpsgd.before_step()
    adpsgd.after_step()
leave_cleanly(adpsgd)
models = gather(comm, x)
assert np.abs(models.sum(axis=0) - total).max() < 1e-10
if p > 1:
    assert adpsgd.statistics()["averages"] > 0
    assert np.ptp(models, axis=0).max() < 1e-3 * np.ptp(gather(comm, start(6)), axis=0).max()
no_torch()
done(comm)
