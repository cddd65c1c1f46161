"""FDA's estimator and traffic (the update itself: oracle_collective.py), numpy, no torch."""

import math

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import FederatedDynamicAveraging

comm = world()
problem = Quadratic(comm, seed=4)
lr = 0.05

# threshold infinity: never averages; only the scalar all-reduce each step (8 bytes, naive)
x = np.zeros(6)
fda = FederatedDynamicAveraging(FlatParams(x), comm=comm, threshold=math.inf, estimator="naive")
for _ in range(15):
    x -= lr * problem.grad(x)
    fda.after_step()
assert fda.statistics()["syncs"] == 0
assert fda.statistics()["bytes_sent"] == 15 * 2 * (comm.size - 1) * 8 // comm.size

# the estimate never underestimates the true variance mean_i |x_i - mean_j x_j|^2 (gathered models)
for estimator in ("linear", "naive"):
    x = np.zeros(6)
    fda = FederatedDynamicAveraging(FlatParams(x), comm=comm, threshold=1.0, estimator=estimator)
    for step in range(40):
        x -= lr * problem.grad(x) + 0.01 * np.random.default_rng(step * 10 + comm.rank).standard_normal(6)
        models = gather(comm, x)
        true_variance = ((models - models.mean(axis=0)) ** 2).sum(axis=1).mean()
        estimate = fda.estimate()
        assert estimate >= true_variance - 1e-12, (step, estimate, true_variance)
        fda.after_step()
no_torch()
done(comm)
