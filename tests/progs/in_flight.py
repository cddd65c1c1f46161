"""Requests in flight live in Algorithm: the default progress() Tests them, one wait completes them.

A tiny algorithm starts one mean all-reduce of its parameters per step and
leaves everything else to the base class. Checked from the contract:
progress() (and grad_ready(), which calls it) completes a request with
Test() alone, its completion work (the 1/p scaling) included; requests stay
listed until wait_in_flight(), which completes them in start order and
forgets them; finish(), state_dict() and load_state_dict() complete what is
in flight first.
"""

import time

import numpy as np
from _common import done, world

from mpisgd import FlatParams
from mpisgd.algorithm import Algorithm

comm = world()
p = comm.size
mean = (p + 1) / 2  # of the ranks' values r + 1


class OneAverage(Algorithm):
    """Starts ``x <- mean_j x_j`` (non-blocking) after every step; nothing else of its own."""

    name = "test-one-average"

    def after_step(self) -> None:
        super().after_step()
        self.in_flight.add(self.comm.iallreduce(self.flat.params, average=True))


def fresh(algorithm):
    algorithm.flat.params[...] = comm.rank + 1.0


x = np.zeros(1000)
algorithm = OneAverage(FlatParams(x), comm=comm)

# 1. the default progress() Tests the request until it completes; no Wait needed
for advance in (algorithm.progress, lambda: algorithm.grad_ready(0)):
    fresh(algorithm)
    algorithm.after_step()
    request = algorithm.in_flight.requests[0]
    before = algorithm.statistics()
    deadline = time.monotonic() + 30
    while not request.done:
        assert time.monotonic() < deadline, "progress() never completed the request"
        advance()
        time.sleep(0.0005)
    stats = algorithm.statistics()
    assert stats["progress_s"] > before["progress_s"] and stats["wait_s"] == before["wait_s"], stats
    assert np.all(x == mean), x[:3]  # the completion (sum, then 1/p) ran inside Test()
    assert algorithm.in_flight.requests == [request]  # listed until the wait
    algorithm.wait_in_flight()
    assert len(algorithm.in_flight) == 0

# 2. one wait completes every request in flight, in start order
fresh(algorithm)
algorithm.after_step()
y = np.full(10, comm.rank + 1.0)
algorithm.in_flight.add(algorithm.comm.iallreduce(y))  # a second all-reduce (a sum), started after the first
first, second = algorithm.in_flight.requests
algorithm.wait_in_flight()
assert first.done and second.done and len(algorithm.in_flight) == 0
assert np.all(x == mean) and np.all(y == p * mean), (x[:3], y[:3])

# 3. finish(), state_dict() and load_state_dict() complete what is in flight first
for complete in (algorithm.finish, algorithm.state_dict, lambda: algorithm.load_state_dict(state)):
    state = algorithm.state_dict()
    fresh(algorithm)
    algorithm.after_step()
    request = algorithm.in_flight.requests[0]
    complete()
    assert request.done and len(algorithm.in_flight) == 0
    assert np.all(x == mean), x[:3]
algorithm.close()
done(comm)
