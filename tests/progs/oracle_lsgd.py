"""LSGD against an independent numpy oracle (ALGORITHMS.md §5.1), step by step, float64.

Every rank minimizes its own quadratic f_i from its own start (``init="keep"``)
with plain gradient steps and reports f_i at its pre-step model as the step's
loss. ``reference()`` simulates all p workers in one process from the spec
alone (it never imports LeaderSGD nor reads its state):

    x_i <- x_i - lr grad f_i(x_i) - pull [t % period == 0] (x_i - x_lead(group of i))
                                  - global_pull [t % global_period == 0] (x_i - x_lead(all))

with every term from the same pre-step models, the leader of a set of ranks
being the one with the lowest mean of its last ``loss_window`` losses (the
current step's last; ties: lowest rank). Each step of the MPI run must match
to 1e-12, for losses reported before ``after_step()`` and after it (the torch
binding's order); after ``finish()`` every rank holds the last leader's model.

Arguments: ``--group-size K`` (0: one group), ``--mutate`` (the no-op mutation
below first: the oracle must then fail with "lsgd differs from the oracle").
"""

import sys

import _mutations
import numpy as np
from _common import Quadratic, done, gather, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import LeaderSGD
from mpisgd.errors import UsageError

TOLERANCE = 1e-12
STEPS = 12


def reference(quadratics, starts, lr, steps, *, period, global_period, pull, global_pull, group_size,
              loss_window):
    """Every worker's model after each step (list of (p, dim) arrays) and the global leader of each step."""
    p = len(starts)
    size = group_size if 0 < group_size < p else p
    groups = [list(range(first, min(first + size, p))) for first in range(0, p, size)]
    window = loss_window or period
    x = np.array(starts, dtype=np.float64)
    history = [[] for _ in range(p)]
    trajectory, leaders = [], []

    def leader_of(ranks, score):
        return min(ranks, key=lambda i: (score[i], i))

    for t in range(1, steps + 1):
        for i, (a, b) in enumerate(quadratics):
            history[i].append(0.5 * (x[i] - b) @ a @ (x[i] - b))  # f_i at the pre-step model
        score = [np.mean(h[-window:]) for h in history]
        new = np.array([x[i] - lr * (a @ (x[i] - b)) for i, (a, b) in enumerate(quadratics)])
        if t % period == 0:
            for ranks in groups:
                lead = leader_of(ranks, score)
                for i in ranks:
                    new[i] -= pull * (x[i] - x[lead])
        if t % global_period == 0:
            lead = leader_of(range(p), score)
            for i in range(p):
                new[i] -= global_pull * (x[i] - x[lead])
        x = new
        trajectory.append(x.copy())
        leaders.append(leader_of(range(p), score))
    return trajectory, leaders


def run(comm, problem, quadratics, start, lr, order, options):
    """The MPI run; every step compared with the oracle on every rank."""
    expected, leaders = reference(quadratics, gather(comm, start), lr, STEPS, **options)
    x = start.copy()
    lsgd = LeaderSGD(FlatParams(x), comm=comm, init="keep", **options)
    for t in range(STEPS):
        loss, grad = problem.value(x), problem.grad(x)
        if order == "before":
            lsgd.report_loss(loss)
        lsgd.before_step()
        x -= lr * grad
        lsgd.after_step()
        if order == "after":
            lsgd.report_loss(loss)
        error = np.abs(gather(comm, x) - expected[t]).max()
        assert error <= TOLERANCE, f"lsgd differs from the oracle at step {t + 1} ({order}, {options}): {error:.3g}"
    lsgd.finish()
    final = gather(comm, x)
    assert np.array_equal(final, np.repeat(expected[-1][leaders[-1]][None], comm.size, axis=0)), \
        "lsgd differs from the oracle after finish(): not the last leader's model"
    lsgd.close()
    return leaders


def oracle(comm, group_size):
    problem = Quadratic(comm, seed=11)
    quadratics = comm.allgather((problem.a, problem.b))  # the test's data, not LeaderSGD's state
    start = np.random.default_rng(100 + comm.rank).standard_normal(6) * 3
    lr = 0.5 / problem.lipschitz
    configs = [dict(period=1, global_period=4, pull=0.1, global_pull=0.1, group_size=group_size, loss_window=1),
               dict(period=2, global_period=3, pull=0.3, global_pull=0.2, group_size=group_size, loss_window=2)]
    changes = 0
    for options in configs:
        for order in ("before", "after"):
            leaders = run(comm, problem, quadratics, start, lr, order, options)
        changes += sum(a != b for a, b in zip(leaders, leaders[1:]))
    assert comm.size == 1 or changes > 0, "the leader never changes: the current step's loss is not tested"


def properties(comm):
    """Ties, pull 0, deterministic LGD (ALGORITHMS.md §5.5) and refused options."""
    # ties go to the lowest rank: everyone moves halfway to rank 0's pre-step model
    x = np.random.default_rng(10 + comm.rank).standard_normal(6)
    before = gather(comm, x)
    lsgd = LeaderSGD(FlatParams(x), comm=comm, init="keep", pull=0.5, global_pull=0.0)
    lsgd.report_loss(1.0)
    lsgd.before_step()
    lsgd.after_step()
    assert np.allclose(gather(comm, x), before + 0.5 * (before[0] - before), rtol=0, atol=1e-15), "ties"

    # pull strengths 0: independent SGD on every rank, nothing sent
    problem = Quadratic(comm, seed=6)
    x, alone = np.zeros(6), np.zeros(6)
    lsgd = LeaderSGD(FlatParams(x), comm=comm, pull=0.0, global_pull=0.0)
    for _ in range(10):
        lsgd.report_loss(problem.value(x))
        lsgd.before_step()
        x -= 0.1 * problem.grad(x)
        alone -= 0.1 * problem.grad(alone)
        lsgd.after_step()
    assert np.array_equal(x, alone) and lsgd.statistics()["bytes_sent"] == 0, "pull 0 must leave every rank alone"

    # deterministic LGD (full gradients, exact objective, lr = 1/L): the leader's objective never
    # increases and every worker reaches the minimizer
    common = Quadratic(comm, seed=7, identical=True)
    x = np.random.default_rng(comm.rank).standard_normal(6) * 3
    lsgd = LeaderSGD(FlatParams(x), comm=comm, global_period=1, init="keep")
    values = []
    for _ in range(150):
        lsgd.report_loss(common.value(x))
        values.append(min(gather(comm, common.value(x))))
        lsgd.before_step()
        x -= common.grad(x) / common.lipschitz
        lsgd.after_step()
    assert all(b <= a + 1e-15 for a, b in zip(values, values[1:])), "leader objective increased"
    assert np.abs(gather(comm, x) - common.minimizer).max() < 1e-8

    # refused: pulls adding up to more than 1, pulling without before_step()
    for options in ({"pull": 0.6, "global_pull": 0.6}, {"group_size": -2}):
        try:
            LeaderSGD(FlatParams(np.zeros(3)), comm=comm, **options)
        except UsageError:
            pass
        else:
            raise AssertionError(f"accepted {options}")
    if comm.size > 1:
        lsgd = LeaderSGD(FlatParams(np.zeros(3)), comm=comm)
        try:
            lsgd.after_step()
        except UsageError as error:
            assert "before_step" in str(error)
        else:
            raise AssertionError("pulled without a pre-step model")


if __name__ == "__main__":
    comm = world()
    group_size = int(sys.argv[sys.argv.index("--group-size") + 1]) if "--group-size" in sys.argv else 0
    if "--mutate" in sys.argv:  # no election, broadcast or pull (tests/progs/_mutations.py)
        _mutations.apply("lsgd")
    oracle(comm, group_size)
    if group_size == 0:
        properties(comm)
    no_torch()
    done(comm)
