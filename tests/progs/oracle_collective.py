"""Independent step-by-step oracles for the collective family: sync, local, cocod, fda, easgd.

Usage: ``oracle_collective.py ALGORITHM [--mutate]``.

Rank i minimizes its own quadratic ``f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i)`` with a
noisy gradient (noise seeded by rank and step) from its own start ``x_i^0`` (``init="keep"``,
except FDA, whose anchor is the common start: rank 0's, broadcast). Every rank steps through
the algorithm's flat-vector class on numpy (plain SGD, float64), and after each step and after
``finish()`` the ranks' parameters are gathered and compared with a single-process numpy
simulation of all p workers written from ALGORITHMS.md (§1.1 sync and Local SGD, §2.1 CoCoD,
§3.1 synchronous EASGD, §11 FDA) and the finish() rules of the classes' docstrings. The
references never import mpisgd nor read an algorithm's state: they see only the problems.
Tolerance: ``TOL`` = 1e-12 absolute (the values are O(1); only the order in which MPI sums
differs from numpy's).

``--mutate`` first replaces the algorithm's communication by a no-op (``_mutations``): every
case must then fail; the program prints one ``ORACLE MISMATCH`` line per case (or
``MUTATION SURVIVED label``) and exits 1.
"""

import sys

import numpy as np
from _common import done, world

DIM, STEPS, LR, NOISE, TOL = 8, 24, 0.1, 0.3, 1e-12
SLOTS = ((0, 3), (3, 5))  # two parameters, so sync has two buckets


def problem(rank):
    """(A_i, b_i, x_i^0) of rank ``rank``: its curvature, its minimizer, its start."""
    rng = np.random.default_rng(100 + rank)
    q = rng.standard_normal((DIM, DIM))
    return q @ q.T / DIM + np.eye(DIM), rng.standard_normal(DIM), rng.standard_normal(DIM)


def grad(rank, x, step):
    a, b, _ = problem(rank)
    return a @ (x - b) + NOISE * np.random.default_rng([rank, step]).standard_normal(DIM)


# -- the references: all p workers in one process, rows of X are the workers' models --------------
def grads(X, step):
    return np.array([grad(i, x, step) for i, x in enumerate(X)])


def starts(p):
    return np.array([problem(i)[2] for i in range(p)])


def wmean(X, w):
    return (w[:, None] * X).sum(axis=0) / w.sum()


def ref_sync(p, o):
    """§1.1: x_i <- x_i - lr mean_j g_j (each worker from its own start)."""
    X = starts(p)
    for t in range(STEPS):
        X = X - LR * grads(X, t).mean(axis=0)
        yield X
    yield X


def ref_local(p, o):
    """§1.1: local steps, x_i <- mean_j x_j every period; finish() averages if steps were taken since."""
    X, last = starts(p), 0
    for t in range(1, STEPS + 1):
        X = X - LR * grads(X, t - 1)
        if t % o["period"] == 0:
            X, last = np.tile(X.mean(axis=0), (p, 1)), t
        yield X
    yield np.tile(X.mean(axis=0), (p, 1)) if last != STEPS else X


def ref_cocod(p, o):
    """§2.1: snapshot s_i, c = (weighted) mean of the snapshots started at the round start and
    merged k steps later, x_i <- c + (x_i - s_i); finish() merges the round in flight, then averages."""
    w = np.array([1.0 + i if o.get("weighted") else 1.0 for i in range(p)])
    X = starts(p)
    S = X.copy()
    C = wmean(S, w)
    for t in range(1, STEPS + 1):
        X = X - LR * grads(X, t - 1)
        if t % o["period"] == 0:
            X = C + (X - S)
            S, C = X.copy(), wmean(X, w)
        yield X
    yield np.tile(wmean(C + (X - S), w), (p, 1))


U0 = np.random.default_rng(12345).standard_normal(DIM)  # FDA's fixed first direction (the class's seed)
U0 /= np.linalg.norm(U0)


def ref_fda(p, o, syncs=None):
    """§11: drift D_i = x_i - anchor; naive: mean|D_i|^2, linear: that minus (mean <u, D_i>)^2 with u
    the unit vector of the last global update; above the threshold, average and re-anchor."""
    X = np.tile(starts(1)[0], (p, 1))  # init="broadcast": rank 0's start
    anchor, u, count = X[0].copy(), U0, 0
    for t in range(STEPS):
        X = X - LR * grads(X, t)
        D = X - anchor
        estimate = (D * D).sum(axis=1).mean()
        if o["estimator"] == "linear":
            estimate -= (D @ u).mean() ** 2
        if estimate > o["threshold"]:
            mean = X.mean(axis=0)
            update = mean - anchor
            u = update / np.linalg.norm(update)
            X, anchor, count = np.tile(mean, (p, 1)), mean, count + 1
        yield X
    if syncs is not None:
        syncs.append(count)
    yield np.tile(X.mean(axis=0), (p, 1))


def ref_easgd(p, o):
    """§3.1 (synchronous, period tau): on exchange steps both forces use the pre-step models,
    x_i <- x_i - lr g_i - alpha (x_i - z), z <- z + alpha sum_i (x_i - z), alpha = beta / p;
    the center starts as the mean of the start models; finish() gives every worker the center."""
    alpha = o["moving_rate"] / p
    X = starts(p)
    z = X.mean(axis=0)
    for t in range(STEPS):
        G = grads(X, t)
        if t % o["period"] == 0:
            X, z = X - LR * G - alpha * (X - z), z + alpha * (X - z).sum(axis=0)
        else:
            X = X - LR * G
        yield X
    yield np.tile(z, (p, 1))


# -- the cases: (label, reference, options, init); "weighted" is the test's own flag -----------------
CASES = {
    "sync": [("sync", ref_sync, {"bucket_mb": 3 * 8 / 2**20}, "keep")],
    "local": [("local period 5", ref_local, {"period": 5}, "keep")],
    "cocod": [("cocod period 3", ref_cocod, {"period": 3}, "keep"),
              ("cocod weighted", ref_cocod, {"period": 4, "weighted": True}, "keep"),
              ("cocod overlap off", ref_local, {"period": 4, "overlap": False}, "keep")],
    "fda": [("fda linear", ref_fda, {"threshold": 0.4, "estimator": "linear"}, "broadcast"),
            ("fda naive", ref_fda, {"threshold": 0.4, "estimator": "naive"}, "broadcast"),
            ("fda threshold 0", ref_fda, {"threshold": 0.0, "estimator": "linear"}, "broadcast")],
    "easgd": [("easgd period 1", ref_easgd, {"period": 1, "moving_rate": 0.9}, "keep"),
              ("easgd period 3", ref_easgd, {"period": 3, "moving_rate": 0.5}, "keep")],
}


def run_mpi(comm, algorithm, options, init):
    """This rank's model after each step and after finish(), every rank's gathered (the run under test)."""
    from mpisgd import FlatParams
    from mpisgd.algorithm import get_algorithm
    from mpisgd.flat import Slot

    options = dict(options)
    if options.pop("weighted", False):
        options["weight"] = 1.0 + comm.rank
    x, g = problem(comm.rank)[2].copy(), np.zeros(DIM)
    slots = [Slot(f"p{i}", (n,), lo, n) for i, (lo, n) in enumerate(SLOTS)]
    algo = get_algorithm(algorithm)(FlatParams(x, g, slots=slots), comm=comm, init=init, **options)
    for t in range(STEPS):
        g[:] = grad(comm.rank, x, t)
        for index in reversed(range(len(slots))):  # as backward hooks would
            algo.grad_ready(index)
        algo.before_step()
        x -= LR * g
        algo.after_step()
        yield np.array(comm.allgather(x.copy()))
    algo.finish()
    yield np.array(comm.allgather(x.copy()))
    algo.close()  # (a mismatch abandons the generator: its communicator stays, harmless in a test)


def check(comm, algorithm, label, reference, options, init):
    p, syncs = comm.size, []
    expected = ref_fda(p, options, syncs) if reference is ref_fda else reference(p, options)
    compared = 0
    for step, (got, want) in enumerate(zip(run_mpi(comm, algorithm, options, init), expected), 1):
        compared += 1
        error = np.abs(got - want).max()
        where = f"step {step}" if step <= STEPS else "finish()"
        assert error <= TOL, f"ORACLE MISMATCH {label} p={p}: {where} max |mpi - reference| = {error:.3g}"
    assert compared == STEPS + 1, (label, compared)
    if syncs and options["threshold"] > 0:  # between the extremes: both branches exercised
        assert 0 < syncs[0] < STEPS, f"{label}: {syncs[0]} averages in {STEPS} steps"
    elif syncs:  # threshold 0: an average after every step that moved the models
        assert syncs[0] == STEPS, f"{label}: {syncs[0]} averages in {STEPS} steps"


if __name__ == "__main__":
    comm = world()
    algorithm, mutate = sys.argv[1], "--mutate" in sys.argv[2:]
    if not mutate:
        for case in CASES[algorithm]:
            check(comm, algorithm, *case)
        done(comm)
        sys.exit(0)
    from _mutations import apply

    apply(algorithm)
    for case in CASES[algorithm]:  # every case must catch the mutation (the ranks fail alike)
        try:
            check(comm, algorithm, *case)
        except AssertionError as mismatch:
            if comm.rank == 0:
                print(mismatch, flush=True)
        else:
            if comm.rank == 0:
                print(f"MUTATION SURVIVED {case[0]}", flush=True)
    comm.Barrier()
    sys.exit(1)
