"""Local SGD oracles (ALGORITHMS.md §1.3) on numpy vectors, without torch."""

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import BucketedAllReduce, PeriodicAveraging

comm = world()
problem = Quadratic(comm, seed=1)
lr = 0.1

# period 1 with plain SGD is synchronous SGD exactly
x_sync, g_sync = np.zeros(6), np.zeros(6)
sync = BucketedAllReduce(FlatParams(x_sync, g_sync), comm=comm)
x_local = np.zeros(6)
local = PeriodicAveraging(FlatParams(x_local), comm=comm, period=1)
for _ in range(20):
    g_sync[:] = problem.grad(x_sync)
    sync.before_step()
    x_sync -= lr * g_sync
    x_local -= lr * problem.grad(x_local)
    local.after_step()
assert np.abs(x_sync - x_local).max() < 1e-12, (x_sync, x_local)

# period 3: models differ between averages, agree right after each one, and after finish()
x = np.zeros(6)
local = PeriodicAveraging(FlatParams(x), comm=comm, period=3)
for step in range(1, 11):
    x -= lr * problem.grad(x)
    local.after_step()
    spread = np.ptp(gather(comm, x), axis=0).max()
    assert (spread == 0) == (step % 3 == 0 or comm.size == 1), (step, spread)
local.finish()
assert np.ptp(gather(comm, x), axis=0).max() == 0
state = local.state_dict()
assert state["steps"] == 10 and state["averaged_at"] == 10 and state["comm_stats"]["calls"] == 4
assert local.statistics()["bytes_sent"] == 4 * 2 * (comm.size - 1) * 48 // comm.size
no_torch()
done(comm)
