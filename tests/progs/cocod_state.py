"""CoCoD-SGD's checkpoint with a round in flight and its finish() (the update itself:
oracle_collective.py), numpy, no torch."""

import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import CoCoD

comm = world()
problem = Quadratic(comm, seed=2)
lr, period = 0.1, 3

# a state taken mid-round (its average pending) restores a twin that continues identically
x = np.zeros(6)
cocod = CoCoD(FlatParams(x), comm=comm, period=period)
for _ in range(5):
    x -= lr * problem.grad(x)
    cocod.after_step()
state = cocod.state_dict()
assert state["steps"] == 5 and state["pending"], state
twin_x = x.copy()
twin = CoCoD(FlatParams(twin_x), comm=comm, period=period, init="keep")
twin.load_state_dict(state)
for _ in range(2):  # through the merge at step 6
    for algo, params in ((cocod, x), (twin, twin_x)):
        params -= lr * problem.grad(params)
        algo.after_step()
assert np.array_equal(x, twin_x)

# finish(): nothing left in flight, and training may go on with a new round
cocod.finish()
assert not cocod.in_flight and not cocod.averaging
x -= lr * problem.grad(x)
cocod.after_step()
assert cocod.averaging
cocod.finish()
no_torch()
done(comm)
