"""AdaHessian through DistributedOptimizer: what is averaged and what stays on the rank.

1. A separable loss (diagonal Hessian, so one Hutchinson sample is exact) that differs per
   rank: under ``sync`` every rank steps with the mean gradient and the mean (signed) Hessian
   diagonal, then |.| and the conv kernel's spatial average (ALGORITHMS.md §4.2; numpy oracle);
   under ``local`` (no average within the run) each rank steps with its own g and D.
2. A small CNN under ``sync``: after backward ``.grad`` is the mean of the ranks' local
   gradients, and after each step the ranks' parameters are identical although each rank
   draws its own Rademacher vectors.
"""

import numpy as np
import torch
from _common import done, world

import mpisgd
from mpisgd.torch import AdaHessian

comm = world()
torch.set_num_threads(1)
LR, B1, B2, EPS, STEPS = 0.15, 0.9, 0.999, 1e-4, 3
SHAPES = [(5,), (2, 3, 3, 3)]  # a bias-like vector and a conv kernel


def problem(rank):
    """Per tensor: c, a of f = sum c softplus(x) + 0.5 a x^2 (a may be negative: a signed Hessian)."""
    rng = np.random.default_rng(100 + rank)
    return [(rng.uniform(0.5, 2, s), rng.uniform(-2, 1, s)) for s in SHAPES]


def grad_hess(terms, xs):
    out = []
    for (c, a), x in zip(terms, xs):
        s = 1 / (1 + np.exp(-x))
        out.append((c * s + a * x, c * s * (1 - s) + a))
    return out


def precondition(d):
    d = np.abs(d)
    return np.broadcast_to(d.mean(axis=(2, 3), keepdims=True), d.shape) if d.ndim == 4 else d


def oracle(ranks, xs):
    """STEPS updates with the mean over ``ranks`` of g and of D (one rank: its own)."""
    terms = [problem(r) for r in ranks]
    m = [np.zeros_like(x) for x in xs]
    v = [np.zeros_like(x) for x in xs]
    for t in range(1, STEPS + 1):
        per_rank = [grad_hess(term, xs) for term in terms]
        for i in range(len(xs)):
            g = sum(pr[i][0] for pr in per_rank) / len(ranks)
            d = precondition(sum(pr[i][1] for pr in per_rank) / len(ranks))
            m[i] = B1 * m[i] + (1 - B1) * g
            v[i] = B2 * v[i] + (1 - B2) * d**2
            xs[i] = xs[i] - LR * (m[i] / (1 - B1**t)) / (np.sqrt(v[i] / (1 - B2**t)) + EPS)
    return xs


def run_separable(algorithm, **options):
    x0 = [np.random.default_rng(7).normal(size=s) for s in SHAPES]
    params = [torch.nn.Parameter(torch.tensor(x)) for x in x0]
    opt = mpisgd.DistributedOptimizer(AdaHessian(params, lr=LR, seed=comm.rank), algorithm, comm=comm, **options)
    terms = [(torch.from_numpy(c), torch.from_numpy(a)) for c, a in problem(comm.rank)]
    for _ in range(STEPS):
        opt.zero_grad()
        loss = sum((c * torch.nn.functional.softplus(p) + 0.5 * a * p**2).sum() for (c, a), p in zip(terms, params))
        mpisgd.torch.adahessian.backward_with_graph(loss)
        opt.step()
    got = [p.detach().numpy().copy() for p in params]
    opt.finish()
    opt.close()
    return got, x0


got, x0 = run_separable("sync")
for have, want in zip(got, oracle(range(comm.size), x0)):
    assert np.allclose(have, want, rtol=1e-12, atol=1e-13), ("sync", np.abs(have - want).max())
got, x0 = run_separable("local", period=100)
for have, want in zip(got, oracle([comm.rank], x0)):
    assert np.allclose(have, want, rtol=1e-12, atol=1e-13), ("local", np.abs(have - want).max())

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(12, 2))
model.double()
opt = mpisgd.SyncSGD(AdaHessian(model.parameters(), lr=0.05, seed=comm.rank), comm=comm)
generator = torch.Generator().manual_seed(comm.rank)
x = torch.randn(16, 1, 4, 4, generator=generator, dtype=torch.float64)
y = (x.sum((1, 2, 3)) > 0).long()
losses = []
for step in range(6):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    local = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)])
    mpisgd.torch.adahessian.backward_with_graph(loss)
    mean = np.empty(len(local))
    comm.Allreduce(local.numpy(), mean)
    assert np.allclose(opt.flat.grads.numpy(), mean / comm.size, rtol=1e-12, atol=1e-14), "grad is not the mean"
    opt.step()
    losses.append(comm.allreduce(loss.item()) / comm.size)
    models = comm.allgather(opt.flat.params.detach().clone())
    assert all(torch.equal(models[0], m) for m in models), f"step {step}: ranks differ under sync"
assert losses[-1] < losses[0], losses
assert opt.statistics()["bytes_sent"] > 0
opt.finish()
opt.close()
done(comm)
