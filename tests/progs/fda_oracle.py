"""FDA oracles (ALGORITHMS.md §11) on numpy vectors, without torch."""

import math

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import FederatedDynamicAveraging, PeriodicAveraging

comm = world()
problem = Quadratic(comm, seed=4)
lr = 0.05

# threshold 0: an average after every step that moved the models (= Local SGD with period 1)
x, x_local = np.zeros(6), np.zeros(6)
fda = FederatedDynamicAveraging(FlatParams(x), comm=comm, threshold=0.0)
local = PeriodicAveraging(FlatParams(x_local), comm=comm, period=1)
for _ in range(15):
    x -= lr * problem.grad(x)
    x_local -= lr * problem.grad(x_local)
    fda.after_step()
    local.after_step()
assert fda.syncs == 15 and np.abs(x - x_local).max() < 1e-12, (fda.syncs, x - x_local)

# threshold infinity: never averages (only the scalar all-reduce each step)
x = np.zeros(6)
fda = FederatedDynamicAveraging(FlatParams(x), comm=comm, threshold=math.inf, estimator="naive")
for _ in range(15):
    x -= lr * problem.grad(x)
    fda.after_step()
assert fda.syncs == 0 and fda.statistics()["bytes_sent"] == 15 * 2 * (comm.size - 1) * 8 // comm.size
fda.finish()
assert np.ptp(gather(comm, x), axis=0).max() < 1e-15

# the linear estimate never underestimates the true variance and is tighter than the naive one
for estimator in ("linear", "naive"):
    x = np.zeros(6)
    fda = FederatedDynamicAveraging(FlatParams(x), comm=comm, threshold=1.0, estimator=estimator)
    estimates = []
    for step in range(40):
        x -= lr * problem.grad(x) + 0.01 * np.random.default_rng(step * 10 + comm.rank).standard_normal(6)
        models = gather(comm, x)
        true_variance = ((models - models.mean(axis=0)) ** 2).sum(axis=1).mean()
        anchor = fda.anchor.copy()
        estimate = fda.estimate()
        naive = (((models - anchor) ** 2).sum(axis=1)).mean()
        assert estimate >= true_variance - 1e-12, (step, estimate, true_variance)
        assert estimate <= naive + 1e-12
        estimates.append(estimate)
        fda.after_step()
    assert 0 < fda.syncs < 40, fda.syncs  # a threshold between the extremes: some averages
state = fda.state_dict()
assert state["syncs"] == fda.syncs and np.array_equal(state["anchor"], fda.anchor)
no_torch()
done(comm)
