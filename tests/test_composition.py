"""Composition problems, the [reconstructed] AsyVRSC estimator and the sequential twins (pure numpy).

Oracles come from the closed forms of ALGORITHMS.md §9 (mean-variance portfolio:
f = -rbar.x + x^T Sigma x + lam/2 |x|^2; Bellman residual: f = |x - bbar - gamma Pbar x|^2 / S),
computed here from the raw data, never from the problem classes' own formulas.
"""

import threading

import numpy as np
import pytest

from mpisgd.errors import UsageError
from mpisgd.masterworker.estimator import Sampler, estimate, shard, snapshot, update
from mpisgd.masterworker.problems import get_problem
from mpisgd.masterworker.sequential import Schedule, compositional_svrg, scgd

SPECS = ["portfolio:pricing", "portfolio:crspday", "portfolio:synthetic:N=6,n=50,seed=3", "mdp"]


@pytest.fixture(scope="module")
def problems():
    return {spec: get_problem(spec) for spec in SPECS}


def closed_form(problem):
    """(value, gradient, hessian, x*) from the spec's formulas on the problem's raw data."""
    if hasattr(problem, "returns"):
        R, lam = problem.returns, problem.lam
        rbar, cov = R.mean(0), np.cov(R.T, bias=True)
        H = 2 * cov + lam * np.eye(R.shape[1])
        return (lambda x: -rbar @ x + x @ cov @ x + 0.5 * lam * x @ x), (lambda x: -rbar + H @ x), H, np.linalg.solve(H, rbar)
    M = np.eye(problem.dim) - problem.gamma * problem.P.mean(0)
    bbar, S = problem.b.mean(0), problem.dim
    H = 2 * M.T @ M / S
    return (lambda x: (M @ x - bbar) @ (M @ x - bbar) / S), (lambda x: 2 * M.T @ (M @ x - bbar) / S), H, np.linalg.solve(M, bbar)


def true_gap(problem, x):
    _, _, H, xs = closed_form(problem)
    d = x - xs
    return 0.5 * d @ H @ d


@pytest.mark.parametrize("spec", SPECS)
def test_value_gradient_and_optimum_match_the_closed_form(problems, spec):
    p = problems[spec]
    value, grad, H, xs = closed_form(p)
    rng = np.random.default_rng(1)
    scale = np.linalg.norm(xs)
    for _ in range(3):
        x = xs + scale * rng.standard_normal(p.dim)
        assert p.value(x) == pytest.approx(value(x), rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(p.gradient(x), grad(x), rtol=1e-9, atol=1e-9 * np.abs(grad(x)).max())
        h = 1e-6 * scale
        fd = np.array([(p.value(x + h * e) - p.value(x - h * e)) / (2 * h) for e in np.eye(p.dim)])
        np.testing.assert_allclose(fd, grad(x), rtol=1e-5, atol=1e-6 * np.abs(grad(x)).max())
    x_star, f_star = p.optimum()
    np.testing.assert_allclose(x_star, xs, rtol=1e-10, atol=1e-12 * scale)
    assert f_star == pytest.approx(value(xs), rel=1e-10, abs=1e-14)
    assert np.linalg.norm(p.gradient(x_star)) < 1e-9 * max(1.0, np.linalg.norm(grad(np.zeros(p.dim))))
    for _ in range(5):
        x = x_star + 1e-3 * scale * rng.standard_normal(p.dim)
        assert p.value(x) > f_star
        assert p.gap(x) == pytest.approx(true_gap(p, x), rel=1e-9)
    np.testing.assert_array_equal(p.x0, np.zeros(p.dim))


@pytest.mark.parametrize("spec", SPECS)
def test_estimator_is_the_full_gradient_at_the_snapshot(problems, spec):
    p = problems[spec]
    _, grad, _, xs = closed_form(p)
    x_tilde = xs + np.linspace(-1, 1, p.dim) * np.linalg.norm(xs)
    snap = snapshot(p, x_tilde)
    np.testing.assert_allclose(snap.grad, grad(x_tilde), rtol=1e-9, atol=1e-9 * np.abs(grad(x_tilde)).max())
    sampler = Sampler(p.m, p.n, 8, seed=5)
    for _ in range(5):
        np.testing.assert_array_equal(estimate(p, snap, snap.x.copy(), sampler.draw()), snap.grad)
    # away from the snapshot the estimate is unbiased over i, j and the batch: check its mean on a tiny problem
    if spec.startswith("portfolio:synthetic"):
        x = x_tilde + 0.1
        mean = np.mean([estimate(p, snap, x, sampler.draw()) for _ in range(5000)], axis=0)
        np.testing.assert_allclose(mean, grad(x), atol=0.2 * np.abs(grad(x)).max())  # snap.grad is 1.4 away


def test_snapshot_over_shards_with_an_all_reduce_equals_the_whole(problems):
    """Two 'workers' (threads) each sum their shard; reduce = a sum over both (like MPI Allreduce SUM)."""
    p = problems["portfolio:pricing"]
    x = np.linspace(-0.01, 0.02, p.dim)
    whole = snapshot(p, x)
    barrier, slots = threading.Barrier(2), [None, None]
    results = [None, None]

    def worker(w):
        def reduce(part):
            slots[w] = part
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            return total
        results[w] = snapshot(p, x, shard(p.m, 2, w), shard(p.n, 2, w), reduce=reduce)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(2)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    for got in results:
        for name in ("x", "inner", "outer_grad", "grad"):
            np.testing.assert_allclose(getattr(got, name), getattr(whole, name), rtol=1e-12, atol=1e-14)
    # one contributor and a reduce adding exact zeros (a master with nothing to add): bit for bit
    one = snapshot(p, x, shard(p.m, 1, 0), shard(p.n, 1, 0), reduce=lambda a: np.zeros_like(a) + a)
    for name in ("inner", "outer_grad", "grad"):
        np.testing.assert_array_equal(getattr(one, name), getattr(whole, name))


def test_shards_partition_the_indices_and_samplers_are_per_worker():
    for total, parts in [(10, 3), (418, 4), (5, 5), (3, 4)]:
        covered = np.concatenate([np.arange(total)[shard(total, parts, w)] for w in range(parts)])
        np.testing.assert_array_equal(covered, np.arange(total))
    with pytest.raises(UsageError):
        shard(10, 2, 2)
    a, b, c = Sampler(50, 7, 4, seed=1), Sampler(50, 7, 4, seed=1), Sampler(50, 7, 4, seed=1, worker=1)
    draws = [(a.draw(), b.draw(), c.draw()) for _ in range(20)]
    assert all(np.array_equal(x.batch, y.batch) and x.j == y.j and x.i == y.i for x, y, _ in draws)
    assert not all(np.array_equal(x.batch, z.batch) for x, _, z in draws)
    for s, _, _ in draws:
        assert s.batch.shape == (4,) and 0 <= s.batch.min() and s.batch.max() < 50 and 0 <= s.i[0] < 7


def test_sequential_svrg_is_snapshot_sampler_estimate_update_with_worker_0(problems):
    """The contract the asynchronous versions rely on to reproduce the sequential run bit for bit."""
    p = problems["mdp"]
    schedule = Schedule(eta=0.1, K=50, A=4, epochs=2)
    run = compositional_svrg(p, schedule, seed=7)
    x, sampler = p.x0, Sampler(p.m, p.n, 4, seed=7, worker=0)
    for _ in range(2):
        snap = snapshot(p, x)
        for _ in range(50):
            update(x, estimate(p, snap, x, sampler.draw()), 0.1)
    np.testing.assert_array_equal(run.x, x)
    assert [r.epoch for r in run.history] == [0, 1, 2] and [r.step for r in run.history] == [0, 50, 100]


# (spec, epochs): compositional SVRG with the problem's default schedule gains >= 1e6 within this many epochs
LINEAR = [("portfolio:pricing", 8), ("portfolio:crspday", 9), ("mdp", 9)]


@pytest.mark.parametrize("spec,epochs", LINEAR)
def test_compositional_svrg_converges_linearly(problems, spec, epochs):
    p = problems[spec]
    run = compositional_svrg(p, epochs=epochs, seed=0)
    start, end = true_gap(p, p.x0), true_gap(p, run.x)
    assert end <= 1e-6 * start, f"{spec}: gap {start:.3e} -> {end:.3e} in {epochs} epochs"
    gaps = run.gaps()
    assert gaps[0] == pytest.approx(start, rel=1e-9) and gaps[-1] == pytest.approx(end, rel=1e-6, abs=1e-300)
    # linear: every third of the run gains at least a factor 10
    thirds = gaps[:: max(1, epochs // 3)]
    assert np.all(thirds[1:] < 0.1 * thirds[:-1]), gaps
    assert [r.time_s for r in run.history] == sorted(r.time_s for r in run.history)


def test_scgd_decreases_the_gap(problems):
    p = problems["mdp"]
    run = scgd(p, alpha=0.1, steps=4000, record_every=1000)
    gaps = np.array([true_gap(p, p.x0)] + [r.gap for r in run.history[1:]])
    assert np.all(np.diff(gaps) < 0) and gaps[-1] < 0.05 * gaps[0], gaps
    assert gaps[-1] > 1e-6 * gaps[0]  # sublinear: far from SVRG's factor 1e6 after 20 epochs' worth of steps
    assert [r.step for r in run.history] == [0, 1000, 2000, 3000, 4000]


def test_torch_problem_matches_the_portfolio_sums(problems):
    torchfn = pytest.importorskip("mpisgd.masterworker.problems.torchfn")
    p = problems["portfolio:pricing"]
    t = torchfn.torch_portfolio(p.returns, p.lam)
    rng = np.random.default_rng(0)
    x, y, u = rng.standard_normal(p.dim), rng.standard_normal(p.dim + 1), rng.standard_normal(p.dim + 1)
    for idx in (np.array([3, 5, 5, 417]), slice(0, p.m), slice(100, 200)):
        np.testing.assert_allclose(t.inner_sum(x, idx), p.inner_sum(x, idx), rtol=1e-12)
        np.testing.assert_allclose(t.jacobian_t_sum(x, idx, u), p.jacobian_t_sum(x, idx, u), rtol=1e-12)
        np.testing.assert_allclose(t.outer_grad_sum(y, idx), p.outer_grad_sum(y, idx), rtol=1e-11)
        assert t.outer_value_sum(y, idx) == pytest.approx(p.outer_value_sum(y, idx), rel=1e-12)
    _, grad, _, _ = closed_form(p)
    np.testing.assert_allclose(t.gradient(x), grad(x), rtol=1e-9)
    with pytest.raises(UsageError, match="no known optimum"):
        t.optimum()
    import doctest
    assert doctest.testmod(torchfn).failed == 0


@pytest.mark.parametrize("spec,dim,m,n", [
    ("portfolio:pricing", 10, 418, 418), ("portfolio:crspday", 4, 2528, 2528),
    ("portfolio:synthetic:N=7,n=30,seed=2", 7, 30, 30), ("portfolio:synthetic", 20, 400, 400),
    ("mdp:S=5,m=20,gamma=0.9,seed=1", 5, 20, 5), ("portfolio:pricing:lam=0", 10, 418, 418)])
def test_spec_parser(spec, dim, m, n):
    p = get_problem(spec)
    assert (p.dim, p.m, p.n) == (dim, m, n)
    assert p.inner_dim == (dim + 1 if spec.startswith("portfolio") else 2 * dim)


@pytest.mark.parametrize("spec,message", [
    ("", "empty"), ("foo", "unknown problem kind"), ("portfolio", "no source"), ("portfolio:nasdaq", "no source"),
    ("portfolio:synthetic:N=x", "not a valid int"), ("portfolio:synthetic:Q=3", "unknown option"),
    ("portfolio:pricing:lam=1:x=2", "too many"), ("portfolio:pricing:lam", "bad option"),
    ("mdp:gamma=1.0", "gamma"), ("portfolio:pricing:lam=-1", "lam"), ("mdp:pricing", "no source"),
    ("portfolio:synthetic:N=3,N=4", "twice")])
def test_spec_parser_errors(spec, message):
    with pytest.raises(UsageError, match=message):
        get_problem(spec)
