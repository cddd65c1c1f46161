"""Local SGD's counters and traffic (the update itself: oracle_collective.py), numpy, no torch."""

import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import PeriodicAveraging

comm = world()
problem = Quadratic(comm, seed=1)
x = np.zeros(6)
local = PeriodicAveraging(FlatParams(x), comm=comm, period=3)
for step in range(1, 11):
    x -= 0.1 * problem.grad(x)
    local.after_step()
local.finish()  # 10 steps: averages at 3, 6, 9 and one more at finish()
state = local.state_dict()
assert state["steps"] == 10 and state["averaged_at"] == 10 and state["comm_stats"]["calls"] == 4, state
assert local.statistics()["bytes_sent"] == 4 * 2 * (comm.size - 1) * 48 // comm.size
no_torch()
done(comm)
