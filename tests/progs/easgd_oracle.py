"""Synchronous EASGD oracles (ALGORITHMS.md §3.4) on numpy vectors, without torch."""

import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import ElasticAveraging

comm = world()
problem = Quadratic(comm, seed=5)
lr, p = 0.05, comm.size

# 1. conservation: sum_i x_i + z changes only by -lr sum_i g_i (elastic forces cancel)
x = np.random.default_rng(comm.rank).standard_normal(6)  # different start models
easgd = ElasticAveraging(FlatParams(x), comm=comm, period=2, moving_rate=0.9, init="keep")
for step in range(30):
    total = gather(comm, x).sum(axis=0) + easgd.center
    easgd.before_step()
    g = problem.grad(x)
    x -= lr * g
    easgd.after_step()
    expected = total - lr * gather(comm, g).sum(axis=0)
    assert np.abs(gather(comm, x).sum(axis=0) + easgd.center - expected).max() < 1e-12, step
    assert np.ptp(gather(comm, easgd.center), axis=0).max() < 1e-15  # identical center replicas

# 2. the center converges to the minimizer of the mean objective (no gradient noise;
#    the ranks' objectives share their curvature but not their minimizers)
problem = Quadratic(comm, seed=8, shared_curvature=True)
x = np.zeros(6)
easgd = ElasticAveraging(FlatParams(x), comm=comm, period=1, moving_rate=0.9)
for _ in range(3000):
    easgd.before_step()
    x -= lr * problem.grad(x)
    easgd.after_step()
error = np.linalg.norm(easgd.center - problem.minimizer)
assert error < 1e-9, error

# 3. with one worker the elastic step is x - alpha (x - z) with alpha = beta
if p == 1:
    y = np.ones(3)
    one = ElasticAveraging(FlatParams(y), comm=comm, period=1, moving_rate=0.5)
    one.center[:] = 0.0
    one.before_step()
    one.after_step()  # no local step
    assert np.allclose(y, 0.5) and np.allclose(one.center, 0.5)

# 4. finish(): every rank holds the center; state_dict carries it
state = easgd.state_dict()
assert np.array_equal(state["center"], easgd.center) and state["steps"] == 3000
easgd.finish()
assert np.array_equal(x, easgd.center)
no_torch()
done(comm)
