"""AdaHessian as a local optimizer: its estimator and update against the formulas of ALGORITHMS.md §4.2
(oracles in numpy, written from the spec), and through mpisgd's algorithms under real mpiexec."""

import itertools
import json

import numpy as np
import pytest
import torch
from mpirun import assert_ok, mpisgd, run_prog

from mpisgd.torch.adahessian import AdaHessian, hutchinson_diagonal, spatial_average

# backward(create_graph=True) warns of a reference cycle that step() breaks
pytestmark = pytest.mark.filterwarnings("ignore:Using backward")


def quadratic_gradient(a: np.ndarray, x0: np.ndarray):
    """x and the gradient (with its graph) of 0.5 x^T A x at x0."""
    x = torch.tensor(x0, requires_grad=True)
    loss = 0.5 * x @ torch.from_numpy(a) @ x
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    return x, grad


def test_hutchinson_expectation_is_the_diagonal_exactly():
    """Averaged over all 2^n sign vectors z, z * (A z) is diag(A) (the off-diagonal terms cancel)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    a = a + a.T
    x, grad = quadratic_gradient(a, rng.normal(size=4))
    samples = [hutchinson_diagonal([grad], [x], vectors=[torch.tensor(z, dtype=torch.float64)], retain_graph=True)[0]
               for z in itertools.product([-1.0, 1.0], repeat=4)]
    assert np.allclose(torch.stack(samples).mean(0).numpy(), np.diag(a), atol=1e-12)


def test_hutchinson_sampled_estimate_is_within_tolerance():
    rng = np.random.default_rng(1)
    n, draws = 6, 4000
    a = rng.normal(size=(n, n))
    a = a + a.T
    x, grad = quadratic_gradient(a, rng.normal(size=n))
    generator = torch.Generator().manual_seed(3)
    estimate = sum(hutchinson_diagonal([grad], [x], generator=generator, retain_graph=True)[0]
                   for _ in range(draws)) / draws
    # Var[z_i (A z)_i] = sum_{j != i} A_ij^2: allow five standard errors
    off = (a**2).sum(1) - np.diag(a) ** 2
    assert np.all(np.abs(estimate.numpy() - np.diag(a)) <= 5 * np.sqrt(off / draws))


def test_one_sample_is_exact_for_a_diagonal_hessian():
    a = np.diag([3.0, -0.5, 7.0, 0.25])
    x, grad = quadratic_gradient(a, np.ones(4))
    d = hutchinson_diagonal([grad], [x], generator=torch.Generator().manual_seed(0))[0]
    assert np.allclose(d.numpy(), np.diag(a), atol=1e-14)  # z * z = 1


def numpy_adahessian(x, grad, hess_diag, steps, lr, betas, eps, wd, k, average=lambda d: np.abs(d)):
    """The spec's update, ``steps`` times, for a loss with a diagonal Hessian (D exact)."""
    b1, b2 = betas
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, steps + 1):
        g, d = grad(x), average(hess_diag(x))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * (m_hat / (np.sqrt(v_hat) ** k + eps) + wd * x)
    return x


def softplus_problem(shape, seed):
    """f(x) = sum c * softplus(x) + 0.5 sum a x^2: diagonal Hessian c s(1-s) + a (s = sigmoid(x))."""
    rng = np.random.default_rng(seed)
    c, a, x0 = rng.uniform(0.5, 2, shape), rng.uniform(-0.2, 1, shape), rng.normal(size=shape)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    grad = lambda x: c * sigmoid(x) + a * x  # noqa: E731
    hess = lambda x: c * sigmoid(x) * (1 - sigmoid(x)) + a  # noqa: E731
    loss = lambda w: (torch.from_numpy(c) * torch.nn.functional.softplus(w)  # noqa: E731
                      + 0.5 * torch.from_numpy(a) * w**2).sum()
    return x0, grad, hess, loss


def run_torch(x0, loss_fn, steps, **options):
    w = torch.nn.Parameter(torch.tensor(x0))
    opt = AdaHessian([w], seed=0, **options)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward(create_graph=True)
        opt.step()
    assert w.grad is not None and not w.grad.requires_grad  # step() dropped the graph
    return w.detach().numpy()


@pytest.mark.parametrize("options", [{}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1,
                                          "hessian_power": 0.5}], ids=["defaults", "all-options"])
def test_steps_equal_the_formula(options):
    x0, grad, hess, loss = softplus_problem((7,), seed=4)
    expected = numpy_adahessian(x0, grad, hess, 3, options.get("lr", 0.15), options.get("betas", (0.9, 0.999)),
                                options.get("eps", 1e-4), options.get("weight_decay", 0.0),
                                options.get("hessian_power", 1.0))
    assert np.allclose(run_torch(x0, loss, 3, **options), expected, rtol=1e-12, atol=1e-12)


def conv_average(d):
    """|D| averaged over a (out, in, kh, kw) kernel's kh x kw window, by loops."""
    out = np.empty_like(d)
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            out[i, j] = sum(abs(d[i, j, r, s]) for r in range(d.shape[2]) for s in range(d.shape[3])) / (
                d.shape[2] * d.shape[3])
    return out


def test_conv_weight_is_spatially_averaged():
    d = np.random.default_rng(5).normal(size=(3, 2, 3, 3))
    assert np.allclose(spatial_average(torch.from_numpy(d)).expand(d.shape).numpy(), conv_average(d))
    x0, grad, hess, loss = softplus_problem((3, 2, 3, 3), seed=6)
    expected = numpy_adahessian(x0, grad, hess, 2, 0.15, (0.9, 0.999), 1e-4, 0.0, 1.0, average=conv_average)
    assert np.allclose(run_torch(x0, loss, 2), expected, rtol=1e-12, atol=1e-12)
    flat = np.random.default_rng(7).normal(size=(4, 5))  # other shapes: |D| element by element
    assert np.array_equal(spatial_average(torch.from_numpy(flat)).numpy(), np.abs(flat))


def test_step_without_the_gradients_graph_is_refused():
    w = torch.nn.Parameter(torch.ones(3))
    opt = AdaHessian([w])
    (w**3).sum().backward()
    with pytest.raises(RuntimeError, match="create_graph=True"):
        opt.step()


def test_seeded_runs_repeat_whatever_the_global_generator():
    def run(seed, global_seed):
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        init = torch.Generator().manual_seed(0)
        for p in model.parameters():
            torch.nn.init.normal_(p, generator=init)
        torch.manual_seed(global_seed)
        opt = AdaHessian(model.parameters(), seed=seed)
        x = torch.linspace(-1, 1, 12).reshape(4, 3)
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).sum().backward(create_graph=True)
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    assert torch.equal(run(11, 1), run(11, 2))
    assert not torch.equal(run(11, 1), run(12, 1))


def test_sync_averages_the_hessian_and_local_keeps_it():
    """Under mpiexec: sync steps with the mean g and mean D (ranks stay equal), local with this rank's."""
    assert_ok(run_prog(2, "adahessian_oracle.py", timeout=120))


@pytest.mark.parametrize("algorithm", ["sync", "local", "gossip"])
def test_train_learns_with_adahessian(tmp_path, algorithm):
    path = tmp_path / "m.jsonl"
    result = mpisgd(2, "train", "--local-optimizer", "adahessian", "--algorithm", algorithm, "--lr", "0.15",
                    "--epochs", "2", "--quiet", "--metrics", path, timeout=180)
    assert result.returncode == 0, result.output[-3000:]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["config"]["local_optimizer"] == "adahessian"
    assert lines[-1]["final_accuracy"] > 0.6  # digits: 10 classes, chance is 0.1


@pytest.mark.parametrize("flag", [["--momentum", "0.5"], ["--nesterov"]])
def test_sgd_flags_are_refused_with_adahessian(flag):
    result = mpisgd(1, "train", "--local-optimizer", "adahessian", *flag, timeout=60)
    assert result.returncode == 2, result.output[-3000:]
    assert "--local-optimizer sgd" in result.stderr and len(result.stderr.splitlines()) <= 2
