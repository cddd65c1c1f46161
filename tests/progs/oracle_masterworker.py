"""Independent step-by-step oracles of easgd-async, eamsgd-async and easgd-dw under a recorded schedule.

``oracle_masterworker.py ALGORITHM [--mutate]``: the first ranks serve, every
other rank is a worker minimizing its own quadratic (``_common.Quadratic``:
its own A_i and b_i) from its own start, the center starting from the
servers' own starts (``init="keep"``), float64, flat-vector API, plain SGD
steps in numpy between the algorithm's hooks, workers pausing for
rank-dependent times so that their messages interleave at the server. Each
server records the order in which it handled the workers' messages
(``algorithm.record = []``, :mod:`mpisgd.masterworker.base`); every rank then
gathers all workers' parameters after every step, what each ended holding,
the servers' final center and the logs, replays the logs in the numpy
reference ``_masterworker_reference`` (written from ALGORITHMS.md §3.1 and
§4.2; it imports nothing of mpisgd) and requires every value to match within
``TOLERANCE``. Configurations: easgd-async in both orders and on 2 servers
(a sliced center), eamsgd-async (delta 0.9) in both orders, easgd-dw with a
short deadline (closings decided by it, late reports) and a long one.

``--mutate``: the exchange is made a no-op first (``_mutations``: workers never
apply the pull, servers never move the center, messages still flow); the
oracle must then fail with ``differs from the reference``.
"""

import sys
import time

import _masterworker_reference as reference
import _mutations
import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.masterworker import AsyncElasticAveraging, AsyncElasticMomentum, DynamicWeighting

TOLERANCE = 1e-12  # max abs difference of any coordinate, any worker, any step (values are O(1))
DIM, LR, BETA, STEPS = 7, 0.1, 0.9, 24

comm = world()
rank = comm.rank
algorithm_name = sys.argv[1]
if "--mutate" in sys.argv:
    _mutations.apply(algorithm_name)


def run(cls, seed, servers=1, pause=0.001, **options):
    """The MPI run; returns, gathered on every rank: quads, starts, workers' histories and what each ended
    holding, the servers' logs and the final center (as server 0 holds it)."""
    quad = Quadratic(comm, dim=DIM, seed=seed)
    start = np.random.default_rng([seed, rank]).standard_normal(DIM) * 3
    x = start.copy()
    algorithm = cls(FlatParams(x), comm=comm, init="keep", servers=servers, timeout=60, **options)
    history, log = [x.copy()], None
    if algorithm.is_server:
        algorithm.record = log = []
        algorithm.serve()
    else:
        for step in range(STEPS):
            g = quad.grad(x)  # at the parameters (EAMSGD: the look-ahead point)
            time.sleep(pause * (1 + (rank + step) % 3))  # paces that change with rank and step
            algorithm.before_step()
            x -= LR * g
            algorithm.after_step()
            history.append(x.copy())
        algorithm.finish()
    algorithm.close()
    every = comm.allgather(((quad.a, quad.b), start, np.array(history), x.copy(),
                            None if log is None else [tuple(e) for e in log]))
    quads, starts, histories, ends, logs = (list(column) for column in zip(*every))
    slices = [algorithm.slice_of(s) for s in range(servers)]
    center = np.concatenate([starts[s][slices[s]] for s in range(servers)])
    return (quads[servers:], starts[servers:], histories[servers:], ends[servers:], logs[:servers], ends[0],
            slices, center)


def compare(label, what, got, expected):
    error = float(np.abs(np.asarray(got) - np.asarray(expected)).max())
    assert error <= TOLERANCE, f"{label}: {what} differs from the reference by {error:.3g} (tolerance {TOLERANCE})"


def check(label, histories, ends, center, expected_histories, finals, expected_center):
    for i, (got, expected) in enumerate(zip(histories, expected_histories)):
        assert len(got) == len(expected), f"{label}: worker {i} has {len(got)} states, not {len(expected)}"
        for t, (mine, theirs) in enumerate(zip(got, expected)):
            compare(label, f"worker {i} after step {t}", mine, theirs)
        compare(label, f"worker {i}'s model after leaving (the center as it left)", ends[i], finals[i])
    compare(label, "the final center", center, expected_center)


def interleaved(log):
    """How many times the server handled another worker's message between a worker's request and update."""
    open_, count = {}, 0
    for kind, worker, _ in log:
        if kind == "request":
            open_[worker] = True
        elif kind == "update":
            open_.pop(worker, None)
        count += kind in ("request", "update") and any(w != worker for w in open_)
    return count


def elastic(label, cls, seed, servers=1, overlap=False, momentum=0.0):
    options = {"local_momentum": momentum} if cls is AsyncElasticMomentum else {}
    quads, starts, histories, ends, logs, center, slices, center0 = run(
        cls, seed, servers, period=2, moving_rate=BETA, overlap=overlap, **options)
    assert sum(len(log) for log in logs) > 0, f"{label}: nothing was recorded"
    expected, finals, expected_center = reference.async_easgd(
        quads, starts, center0, slices, logs, lr=LR, steps=STEPS, period=2, beta=BETA, overlap=overlap,
        momentum=momentum)
    check(label, histories, ends, center, expected, finals, expected_center)
    if rank == 0:
        print(f"{label}: {sum(len(log) for log in logs)} messages replayed, {interleaved(logs[0])} handled "
              f"between another worker's request and update", flush=True)


def weighting(label, seed, deadline, rule="dynamic"):
    quads, starts, histories, ends, logs, center, _, center0 = run(
        DynamicWeighting, seed, pause=0.002, period=2, moving_rate=BETA, deadline=deadline, weighting=rule,
        decay=0.5)
    expected, finals, expected_center, by_deadline, late = reference.dynamic_weighting(
        quads, starts, center0, logs[0], lr=LR, steps=STEPS, period=2, beta=BETA, decay=0.5, weighting=rule)
    check(label, histories, ends, center, expected, finals, expected_center)
    if rank == 0:
        print(f"{label}: {len(logs[0])} events replayed, {by_deadline} periods closed by the deadline, "
              f"{late} late reports", flush=True)


if algorithm_name == "easgd-async":
    elastic("easgd-async, paper order", AsyncElasticAveraging, 1)
    elastic("easgd-async, overlap", AsyncElasticAveraging, 2, overlap=True)
    elastic("easgd-async, 2 servers, paper order", AsyncElasticAveraging, 3, servers=2)
    elastic("easgd-async, 2 servers, overlap", AsyncElasticAveraging, 4, servers=2, overlap=True)
elif algorithm_name == "eamsgd-async":
    elastic("eamsgd-async delta 0.9, paper order", AsyncElasticMomentum, 5, momentum=0.9)
    elastic("eamsgd-async delta 0.9, overlap", AsyncElasticMomentum, 6, overlap=True, momentum=0.9)
elif algorithm_name == "easgd-dw":
    weighting("easgd-dw, deadline 1 ms", 7, 0.001)
    weighting("easgd-dw, deadline 10 s", 8, 10.0)
    weighting("easgd-dw plain, deadline 1 ms", 9, 0.001, rule="plain")
else:
    raise SystemExit(f"unknown algorithm {algorithm_name!r}")
no_torch()
done(comm)
