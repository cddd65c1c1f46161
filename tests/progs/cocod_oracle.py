"""CoCoD-SGD oracles (ALGORITHMS.md §2.4) on numpy vectors, without torch."""

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import CoCoD, PeriodicAveraging

comm = world()
lr, period = 0.1, 3

# 1. the merge preserves the sum of the models (checked at every round end)
problem = Quadratic(comm, seed=2)
x = np.zeros(6)
cocod = CoCoD(FlatParams(x), comm=comm, period=period)
for step in range(1, 31):
    x -= lr * problem.grad(x)
    before = gather(comm, x).sum(axis=0)
    cocod.after_step()
    after = gather(comm, x).sum(axis=0)
    assert np.abs(before - after).max() < 1e-12, (step, before - after)

# 2. identical data, identical start, deterministic gradients: exactly serial gradient descent
same = Quadratic(comm, seed=3, identical=True)
x, serial = np.zeros(6), np.zeros(6)
cocod = CoCoD(FlatParams(x), comm=comm, period=period)
for _ in range(60):
    x -= lr * same.grad(x)
    serial -= lr * same.grad(serial)
    cocod.after_step()
assert np.array_equal(x, serial), np.abs(x - serial).max()

# 3. overlap off is Local SGD with the same period
x_off, x_local = np.zeros(6), np.zeros(6)
off = CoCoD(FlatParams(x_off), comm=comm, period=period, overlap=False)
local = PeriodicAveraging(FlatParams(x_local), comm=comm, period=period)
for _ in range(20):
    x_off -= lr * problem.grad(x_off)
    x_local -= lr * problem.grad(x_local)
    off.after_step()
    local.after_step()
    assert np.abs(x_off - x_local).max() < 1e-12

# 4. the average used at a merge is exactly one period old: x = mean(s) + (x - s)
x = np.zeros(6)
cocod = CoCoD(FlatParams(x), comm=comm, period=period)
for step in range(1, 13):
    x -= lr * problem.grad(x)
    if step % period == 0:
        snapshots = gather(comm, cocod.snapshot)
        expected = snapshots.mean(axis=0) + (x - cocod.snapshot)
        cocod.after_step()
        assert np.abs(x - expected).max() < 1e-12
    else:
        cocod.after_step()

# 5. heterogeneous weights [reconstructed]: the average is weighted by w_i / sum w
weight = 1.0 + comm.rank
x = np.full(6, float(comm.rank))
cocod = CoCoD(FlatParams(x), comm=comm, period=1, weight=weight, init="keep")
snapshots, weights = gather(comm, x), gather(comm, weight)
cocod.after_step()  # no local step: x = weighted mean of the start models
expected = (weights[:, None] * snapshots).sum(axis=0) / weights.sum()
assert np.abs(x - expected).max() < 1e-12, (x, expected)

# 6. finish(): one model everywhere, nothing in flight; state_dict round trip
x = np.zeros(6)
cocod = CoCoD(FlatParams(x), comm=comm, period=period)
for _ in range(5):
    x -= lr * problem.grad(x)
    cocod.after_step()
state = cocod.state_dict()
assert state["steps"] == 5 and state["pending"] and np.array_equal(state["snapshot"], cocod.snapshot)
assert np.array_equal(state["buffer"], cocod.buffer)
twin_x = x.copy()
twin = CoCoD(FlatParams(twin_x), comm=comm, period=period, init="keep")
twin.load_state_dict(state)
for algo, params in ((cocod, x), (twin, twin_x)):
    params -= lr * problem.grad(params)
    algo.after_step()
assert np.array_equal(x, twin_x)
cocod.finish()
assert not cocod.in_flight and not cocod.averaging and np.ptp(gather(comm, x), axis=0).max() == 0
no_torch()
done(comm)
