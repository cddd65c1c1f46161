"""Independent step-by-step oracle of AsyVRSC-Distributed under a recorded arrival order.  Usage:
``oracle_asyvrsc.py [--mutate]`` on 1 master + p workers (the test runs 3 ranks: 2 workers).

The master records the order in which it handled the workers' messages (``solver.record = []``,
:mod:`mpisgd.masterworker.base`: one ``request`` per worker update, stamped with the version of the x
it was computed on, then each ``leave``); the program also keeps the master's x after every applied
update (and which worker's it was) by wrapping the solver's ``_apply`` on that one instance. The numpy
reference ``_asyvrsc_reference`` (ALGORITHMS.md §9; imports nothing of mpisgd) receives the problem's
return matrix, recomputes G, its Jacobian and grad F itself, REPRODUCES each worker's sample stream from
the seed (``default_rng([seed, w])``, not recorded), replays the arrival order with the delay bound
and the epoch-end drops, and must give the same sequence of applying workers and the same x after
every update within ``TOLERANCE``. Configurations: the default bound tau = p - 1 and max_delay 3.

``--mutate``: the master's update is a no-op (``_mutations``); the oracle must fail with
``differs from the reference``.
"""

import sys
import time

import _asyvrsc_reference as reference
import _mutations
import numpy as np
from _common import done, world

from mpisgd.masterworker import AsyVRSCDistributed
from mpisgd.masterworker.problems import get_problem

TOLERANCE = 1e-12  # max abs difference of any coordinate after any update (x is O(1), float64)
SEED, EPOCHS, K, A = 3, 3, 60, 4

comm = world()
if "--mutate" in sys.argv:
    _mutations.apply("asyvrsc-distributed")
problem = get_problem("portfolio:synthetic:N=6,n=40,seed=0")


def run(**options):
    """The MPI run; returns (on every rank) the master's log, its trace [(worker, x after)], eta, delays."""
    x = problem.x0.copy()
    solver = AsyVRSCDistributed(x, problem, comm=comm, epochs=EPOCHS, inner_steps=K, batch=A, seed=SEED,
                                timeout=60, **options)
    log, trace = None, None
    if solver.is_server:
        solver.record = log = []
        trace, apply = [], solver._apply

        def traced(message):
            apply(message)
            trace.append((message.source - 1, solver.x.copy()))

        solver._apply = traced
    else:
        estimate = solver.endpoint.request

        def paced(*args, **kwargs):  # worker-dependent pace, so that the arrivals interleave unevenly
            time.sleep(0.0005 * (1 + (solver.worker + solver.steps) % 3))
            return estimate(*args, **kwargs)

        solver.endpoint.request = paced
    solver.run()
    eta = solver.schedule.eta
    solver.close()
    log, trace = comm.bcast(([tuple(e) for e in log], trace) if log is not None else None, root=0)
    return log, trace, eta, solver.delays


def check(label, **options):
    log, trace, eta, delays = run(**options)
    applied, expected_delays, dropped = reference.distributed(
        problem.returns, problem.x0, log, eta=eta, K=K, A=A, epochs=EPOCHS, seed=SEED,
        workers=comm.size - 1, tau=options.get("max_delay", 0))
    assert len(trace) == len(applied), f"{label}: {len(trace)} updates applied, the reference {len(applied)}"
    worst = 0.0
    for k, ((w, x), (w_ref, x_ref)) in enumerate(zip(trace, applied)):
        assert w == w_ref, f"{label}: update {k} came from worker {w}, the reference applies worker {w_ref}'s"
        error = float(np.abs(x - x_ref).max())
        worst = max(worst, error)
        assert error <= TOLERANCE, (f"{label}: the master's x after update {k} differs from the reference by "
                                    f"{error:.3g} (tolerance {TOLERANCE})")
    assert list(delays) == expected_delays, f"{label}: delays {delays} differ from the reference"
    if comm.rank == 0:
        print(f"{label}: {len(log)} events replayed, {len(trace)} updates matched (max error {worst:.1e}), delays "
              f"{ {int(d): delays.count(d) for d in sorted(set(delays))} }, {dropped} dropped", flush=True)


check("asyvrsc-distributed, tau = p - 1")
check("asyvrsc-distributed, max_delay 3", max_delay=3)
done(comm)
