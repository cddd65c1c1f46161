"""CoCoD keeps its all-reduce in flight across the local steps of a round.

Deterministic checks of the mechanism (how much time that hides is a timing
figure, measured by ``python -m mpisgd.bench overlap``, not asserted here):

- each round's Iallreduce is started at the round's first step and is the
  same request through all ``period`` local steps; only the round end
  waits for it (merge) and starts the next one;
- ``progress()`` (the default of ``Algorithm``) between slices of local work
  Tests the request in flight (``progress_s`` grows), and every round's
  all-reduce is counted;
- Local SGD (``overlap=False``) keeps nothing in flight and blocks once per
  round;
- after ``finish()`` nothing is in flight and every rank holds one model.

Compute is played by sleeping in slices with progress() between them, as the
torch binding does from its backward hooks. The time each variant spent
blocked is printed for information only.
"""

import time

import numpy as np
from _common import done, world

from mpisgd import FlatParams
from mpisgd.collective import CoCoD, PeriodicAveraging

comm = world()
numel, period, rounds, step_s = 200_000, 4, 6, 0.005


def current(algorithm):
    """The one request the algorithm has in flight (None: nothing)."""
    requests = algorithm.in_flight.requests
    assert len(requests) <= 1, requests
    return requests[0] if requests else None


def train(algorithm_class, **options):
    x = np.zeros(numel)
    algorithm = algorithm_class(FlatParams(x), comm=comm, period=period, **options)
    in_flight = current(algorithm)
    before = algorithm.statistics()
    comm.Barrier()
    for step in range(1, period * rounds + 1):
        end = time.perf_counter() + step_s
        while time.perf_counter() < end:  # the local step
            time.sleep(0.001)
            algorithm.progress()
        x += 1.0 + comm.rank  # ranks drift apart between averages
        algorithm.after_step()
        request = current(algorithm)
        if in_flight is None:  # Local SGD: nothing is ever in flight
            assert request is None, step
        elif step % period:  # inside a round: the same all-reduce is still in flight
            assert request is in_flight, step
        else:  # round end: merged, and the next all-reduce started
            assert request is not None and request is not in_flight and not request.done, step
            in_flight = request
    stats = {key: value - before[key] for key, value in algorithm.statistics().items()}
    if in_flight is not None:
        assert stats["progress_s"] > 0  # Test() ran on the request in flight
    assert stats["calls"] == rounds, stats  # one all-reduce per round
    algorithm.finish()
    assert current(algorithm) is None
    models = comm.allgather(x.copy())
    assert all(np.array_equal(models[0], model) for model in models)
    algorithm.close()
    return stats


local = train(PeriodicAveraging)
cocod = train(CoCoD)
assert cocod["bytes_sent"] == local["bytes_sent"]
if comm.rank == 0:
    print(f"blocked (information, not asserted): local {local['wait_s']:.3f} s, "
          f"cocod {cocod['wait_s']:.3f} s (progress {cocod['progress_s']:.3f} s)", flush=True)
done(comm)
