"""Leader SGD oracles (ALGORITHMS.md §5.5) on numpy vectors, without torch."""

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import LeaderSGD

comm = world()
problem = Quadratic(comm, seed=6)
p = comm.size

# 1. deterministic LGD (full gradients, exact objective picks the leader, lr = 1/L):
#    the leader's objective never increases and every worker reaches the minimizer
common = Quadratic(comm, seed=7, identical=True)
lr = 1.0 / common.lipschitz
x = np.random.default_rng(comm.rank).standard_normal(6) * 3
lsgd = LeaderSGD(FlatParams(x), comm=comm, period=1, global_period=1, pull=0.1, global_pull=0.1, loss_window=1,
                 init="keep")
leader_values = []
for _ in range(300):
    x -= lr * common.grad(x)
    lsgd.report_loss(common.value(x))
    lsgd.after_step()
    leader_values.append(min(gather(comm, common.value(x))))
assert all(b <= a + 1e-15 for a, b in zip(leader_values, leader_values[1:])), "leader objective increased"
assert np.abs(gather(comm, x) - common.minimizer).max() < 1e-8

# 2. the leader is invariant under its own pull; the others move toward it
x = np.random.default_rng(10 + comm.rank).standard_normal(6)
lsgd = LeaderSGD(FlatParams(x), comm=comm, period=1, global_period=1000, pull=0.5, loss_window=1, init="keep")
lsgd.report_loss(-float(comm.rank == p - 1))  # the last rank has the lowest loss
before = gather(comm, x)
lsgd.after_step()
after = gather(comm, x)
leader = p - 1
assert np.array_equal(after[leader], before[leader]), "the leader moved"
for rank in range(p - 1):
    assert np.allclose(after[rank], before[rank] + 0.5 * (before[leader] - before[rank]), atol=1e-15)

# 3. ties go to the lowest rank
lsgd.report_loss(0.0)
lsgd.losses.clear()
lsgd.report_loss(1.0)
assert lsgd.elect(lsgd.comm) == 0

# 4. multi-leader: groups of 2 ranks elect their own leaders (pull 1: each rank jumps onto it)
if p == 4:
    x = np.full(6, float(comm.rank))
    multi = LeaderSGD(FlatParams(x), comm=comm, period=1, global_period=1000, pull=1.0, group_size=2,
                      loss_window=1, init="keep")
    multi.report_loss(float(-(comm.rank % 2)))  # ranks 1 and 3 lead their groups
    multi.after_step()
    assert np.allclose(x, 1.0 if comm.rank < 2 else 3.0), x
    assert multi.statistics()["group_leader"] == 1

# 5. pull strengths 0: independent SGD on every rank
x, alone = np.zeros(6), np.zeros(6)
lsgd = LeaderSGD(FlatParams(x), comm=comm, period=1, global_period=1, pull=0.0, global_pull=0.0)
for _ in range(10):
    x -= 0.1 * problem.grad(x)
    alone -= 0.1 * problem.grad(alone)
    lsgd.report_loss(problem.value(x))
    lsgd.after_step()
assert np.array_equal(x, alone), "pull 0 must leave every rank alone"
assert lsgd.statistics()["bytes_sent"] == 0, lsgd.statistics()

# 6. finish(): every rank holds the global leader's model; state_dict keeps the losses
x = np.random.default_rng(20 + comm.rank).standard_normal(6)
lsgd = LeaderSGD(FlatParams(x), comm=comm, init="keep")
lsgd.report_loss(float(comm.rank))
lsgd.finish()
assert np.ptp(gather(comm, x), axis=0).max() == 0, "finish() leaves one model"
assert list(lsgd.state_dict()["losses"]) == [float(comm.rank)]
no_torch()
done(comm)
