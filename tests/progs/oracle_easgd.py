"""Synchronous EASGD and EAMSGD against an independent numpy oracle, step by step (float64, 1e-12).

Usage: oracle_easgd.py CASE [--mutate]    CASE: easgd, eamsgd or torch

Every rank minimizes its own quadratic (``_common.Quadratic``) from its own start (``init="keep"``),
with a plain SGD step between the hooks (the flat-vector API; ``torch``: ``mpisgd.EAMSGD`` around
``torch.optim.SGD`` without momentum, the gradient from autograd). The oracle is a single-process
simulation of all p workers written from ALGORITHMS.md §3.1 (the synchronous box; EAMSGD's
Nesterov box with the elastic force outside the momentum); it never imports the classes under test
nor reads their state: it sees only the parameters (EAMSGD: the look-ahead point x + delta v where
the next gradient is taken) and, after ``finish()``, the center. Cases: ``easgd``; ``eamsgd`` with
delta = 0.9 and 0.99, and with delta = 0 equal to easgd bit for bit (§3.4); ``torch``: eamsgd (0.9).

``--mutate``: the elastic exchange is a no-op (tests/progs/_mutations.py); the oracle must then fail.
"""

import sys

import _mutations
import numpy as np
from _common import Quadratic, done, gather, world

from mpisgd.collective import ElasticAveraging, ElasticMomentum

LR, PERIOD, BETA, STEPS, DIM = 0.05, 3, 0.9, 30, 6
TOLERANCE = 1e-12


# -- the oracle: ALGORITHMS.md §3.1, all p workers in one process ---------------------------------------
def easgd_reference(starts, grads):
    """Synchronous EASGD: on steps t = 0 mod tau, x_i <- x_i - lr g_i - alpha (x_i - z), z <- z + alpha sum (x_i - z)
    (both from the pre-step values); other steps x_i <- x_i - lr g_i. Yields the models after each step."""
    p = len(starts)
    alpha = BETA / p
    x = [s.copy() for s in starts]
    z = sum(starts) / p
    for t in range(STEPS):
        pulls = [alpha * (xi - z) for xi in x] if t % PERIOD == 0 else [0.0] * p
        x_new = [xi - LR * grad(xi) - pull for xi, grad, pull in zip(x, grads, pulls)]
        if t % PERIOD == 0:
            z = z + alpha * sum(xi - z for xi in x)
        x = x_new
        yield x, z


def eamsgd_reference(starts, grads, delta):
    """EAMSGD with the synchronous exchange: v_i <- delta v_i - lr grad(x_i + delta v_i); x_i <- x_i + v_i, minus
    alpha (x_i - z) on exchange steps (pre-step x_i, z); z as in EASGD. Yields the look-ahead points x_i + delta v_i."""
    p = len(starts)
    alpha = BETA / p
    x = [s.copy() for s in starts]
    v = [np.zeros_like(s) for s in starts]
    z = sum(starts) / p
    for t in range(STEPS):
        v = [delta * vi - LR * grad(xi + delta * vi) for xi, vi, grad in zip(x, v, grads)]
        exchange = t % PERIOD == 0
        x_new = [xi + vi - (alpha * (xi - z) if exchange else 0.0) for xi, vi in zip(x, v)]
        if exchange:
            z = (1 - BETA) * z + BETA * sum(x) / p
        x = x_new
        yield [xi + delta * vi for xi, vi in zip(x, v)], z


# -- the MPI run ----------------------------------------------------------------------------------------
def run(comm, problem, start, cls, **options):
    """Every step's parameters of every rank (gathered), then the center after finish()."""
    x = start.copy()
    algorithm = cls(x, comm=comm, period=PERIOD, moving_rate=BETA, init="keep", **options)
    seen = []
    for _ in range(STEPS):
        g = problem.grad(x)
        algorithm.before_step()
        x -= LR * g
        algorithm.after_step()
        seen.append(gather(comm, x))
    algorithm.finish()
    final = gather(comm, x)
    algorithm.close()
    return seen, final


def run_torch(comm, problem, start, delta):
    """As :func:`run`, through the torch binding (``mpisgd.EAMSGD`` around a plain ``torch.optim.SGD``)."""
    import torch

    import mpisgd

    x = torch.nn.Parameter(torch.from_numpy(start.copy()))
    a, b = torch.from_numpy(problem.a), torch.from_numpy(problem.b)
    opt = mpisgd.EAMSGD(torch.optim.SGD([x], lr=LR), comm=comm, period=PERIOD, moving_rate=BETA, init="keep",
                        local_momentum=delta)
    seen = []
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * (x - b) @ a @ (x - b)).backward()  # gradient a (x - b): a is symmetric
        opt.step()
        seen.append(gather(comm, x.detach().numpy()))
    opt.finish()
    final = gather(comm, x.detach().numpy())
    opt.close()
    return seen, final


def compare(label, seen, final, reference):
    center = None
    for step, (got, (expected, center)) in enumerate(zip(seen, reference)):
        error = np.abs(got - np.array(expected)).max()
        assert error < TOLERANCE, f"{label}: step {step} differs from the oracle by {error:.3g}"
    error = np.abs(final - center).max()
    assert error < TOLERANCE, f"{label}: the final center differs from the oracle by {error:.3g}"


def main():
    comm = world()
    case = sys.argv[1]
    if "--mutate" in sys.argv[2:]:  # the all-reduce of the pre-step models does nothing (_mutations.py)
        _mutations.apply("easgd")
        _mutations.apply("eamsgd")
    problem = Quadratic(comm, dim=DIM, seed=3)
    start = np.random.default_rng(100 + comm.rank).standard_normal(DIM)
    pairs = comm.allgather((problem.a, problem.b))
    grads = [lambda y, a=a, b=b: a @ (y - b) for a, b in pairs]
    starts = list(gather(comm, start))

    if case == "easgd":
        compare("easgd", *run(comm, problem, start, ElasticAveraging), easgd_reference(starts, grads))
    elif case == "eamsgd":
        for delta in (0.9, 0.99):
            compare(f"eamsgd({delta})", *run(comm, problem, start, ElasticMomentum, local_momentum=delta),
                    eamsgd_reference(starts, grads, delta))
        easgd = run(comm, problem, start, ElasticAveraging)
        still = run(comm, problem, start, ElasticMomentum, local_momentum=0.0)
        assert all(np.array_equal(a, b) for a, b in zip(still[0], easgd[0])), "eamsgd(0) != easgd"
        assert np.array_equal(still[1], easgd[1]), "eamsgd(0)'s center != easgd's"
    elif case == "torch":
        compare("torch eamsgd(0.9)", *run_torch(comm, problem, start, 0.9), eamsgd_reference(starts, grads, 0.9))
    else:
        raise SystemExit(f"unknown case {case!r}")
    done(comm)


if __name__ == "__main__":
    main()
