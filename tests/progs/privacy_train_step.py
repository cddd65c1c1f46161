"""The harness's DP step (mpisgd.train.private_step) against the spec on p ranks, float64.

Usage: privacy_train_step.py ALGORITHM PLACEMENT [noop]   (sync split|one: central noise; local each: per node)

1. Oracle, sigma = 0: with --dp-sampling shuffle and B = the shard size every step uses the whole
   shard, so one step is, for sync (central, ALGORITHMS.md §10.1-10.2)
       x <- x - lr * (1 / (p B)) * sum over every rank's samples of w(||g_i||) g_i
   and for local before its first average (per node) x_r <- x_r - lr / B * sum over rank r's samples.
   The oracle takes one backward() per sample on the whole data set and the weights from the
   spec's formulas; 3 steps, compared to 1e-12.
2. Released noise: a parameter the loss never uses has zero per-sample gradients, so a step with
   lr = 1 moves it by -noise / (p B) (central: the noise summed over the ranks has std sigma*C) or
   -noise_r / B (per node: each node adds std sigma*C). N moves v scaled to unit variance give
   N mean(v^2), chi-square with N degrees of freedom, accepted between its 1e-6 and 1 - 1e-6
   quantiles (N = 6e4: within about 1.5% of the std; sqrt(p) off for the split-noise mistake).
"noop" replaces sync's all-reduce by nothing: the oracle must then fail (the mutation check).
"""

import sys

import numpy as np
import torch
from _common import done, world
from scipy.stats import chi2

from mpisgd.torch import DistributedOptimizer
from mpisgd.train.privacy import PrivateRun
from mpisgd.train.private_step import PrivateStep

comm = world()
torch.set_num_threads(1)
algorithm, placement = sys.argv[1], sys.argv[2]
p, rank, B = comm.size, comm.rank, 5
central = algorithm == "sync"
loss_fn = torch.nn.functional.cross_entropy


class Model(torch.nn.Module):
    def __init__(self, unused: int):
        super().__init__()
        torch.manual_seed(3)
        self.body = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        self.unused = torch.nn.Parameter(torch.zeros(unused))  # the loss never sees it: zero gradients

    def forward(self, x):
        return self.body(x)


def private(sigma, clip, rule, r):
    """The run's DP settings (shuffled batches of B = the whole shard, so q = 1), noise seeded."""
    return PrivateRun(rule=rule, clip=clip, r=r, q=1.0, delta=1e-5, kind="rdp", sampling="shuffle",
                      central=central, placement=placement, batch_size=B, virtual_batch=3, planned_steps=10,
                      budget=None, seed=11, sigma=sigma)


def build(unused, lr):
    model = Model(unused).double()
    dist = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=lr, momentum=0), algorithm, comm=comm,
                                init="check", **({"period": 1000} if algorithm == "local" else {}))
    if len(sys.argv) > 3:  # the mutation: no communication before the step (sync: no all-reduce)
        dist.algorithm.before_step = lambda: None
    return model, dist


# -- 1. the oracle ------------------------------------------------------------------------------------
generator = torch.Generator().manual_seed(5)
X = torch.randn(B * p, 6, dtype=torch.float64, generator=generator)
Y = torch.randint(0, 3, (B * p,), generator=generator)
mine = slice(rank * B, (rank + 1) * B)
LR, STEPS, R = 0.3, 3, 0.05
for rule in ("dpsgd", "nsgd", "autos", "psac"):
    model, dist = build(4, LR)
    settings = private(0.0, 0.8, rule, None if rule == "dpsgd" else R)
    step = PrivateStep(model, dist, "classification", (X[mine], Y[mine]), settings, ranks=p, rank=rank)
    oracle = Model(4).double()
    owners = range(p) if central else [rank]
    for _ in range(STEPS):
        step()
        total = [torch.zeros_like(q) for q in oracle.parameters()]
        for i in [i for owner in owners for i in range(owner * B, (owner + 1) * B)]:
            oracle.zero_grad()
            loss_fn(oracle(X[i : i + 1]), Y[i : i + 1]).backward()
            grads = [torch.zeros_like(q) if q.grad is None else q.grad.clone() for q in oracle.parameters()]
            n = float(torch.sqrt(sum((g * g).sum() for g in grads)))
            w = {"dpsgd": min(1.0, 0.8 / n) if n > 0 else 1.0, "nsgd": 0.8 / (n + R), "autos": 0.8 / (n + R),
                 "psac": 0.8 / (n + R / (n + R))}[rule]
            total = [t + w * g for t, g in zip(total, grads)]
        with torch.no_grad():
            for q, t in zip(oracle.parameters(), total):
                q -= LR * t / (len(owners) * B)
    got = torch.cat([q.detach().reshape(-1) for q in model.parameters()])
    want = torch.cat([q.detach().reshape(-1) for q in oracle.parameters()])
    error = float((got - want).abs().max())
    assert error < 1e-12, f"{algorithm} {rule} rank {rank}: the DP step is off the spec by {error:.3g}"
    dist.close()

# -- 2. the released noise --------------------------------------------------------------------------
SIGMA, CLIP, D, T = 1.3, 0.7, 20000, 3
model, dist = build(D, 1.0)
step = PrivateStep(model, dist, "classification", (X[mine], Y[mine]), private(SIGMA, CLIP, "psac", None),
                   ranks=p, rank=rank)
moves = []
for _ in range(T):
    before = model.unused.detach().clone()
    step()
    moves.append((model.unused.detach() - before).numpy())
scale = (SIGMA * CLIP / (p * B)) if central else SIGMA * CLIP / B
v = np.concatenate(moves) / scale
N = v.size
statistic = N * float(np.mean(v**2))
low, high = chi2.ppf(1e-6, N), chi2.isf(1e-6, N)
assert low <= statistic <= high, (f"{algorithm} {placement} on {p} ranks: released std / expected = "
                                  f"{np.sqrt(statistic / N):.4f}, outside [{np.sqrt(low / N):.4f}, {np.sqrt(high / N):.4f}]")
if rank == 0:
    print(f"released std/(sigma C) x divisor: {np.sqrt(statistic / N):.4f}")
dist.close()
done(comm)
