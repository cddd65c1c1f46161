"""ALGORITHMS.md §10.5 properties 4 and 5 for the all-reduce DP release (dp_release), on p ranks.

4. The all-reduce of the per-rank weighted sums equals the single-process weighted sum over the
   union batch (float64; the last rank's batch is empty when p > 1). Oracle: one backward() per
   sample on every rank, weights from the spec's formulas.
5. With zero gradients, the released sum has standard deviation sigma*C, not sigma*C*sqrt(p), for both
   placements: N = D*T released values v, N s^2/(sigma C)^2 with s^2 = mean(v^2) is chi-square with N
   degrees of freedom; accepted between its 1e-6 and 1 - 1e-6 quantiles (for N = 1e5: s/(sigma C)
   within about 1.1% of 1, while sqrt(2) = 1.41 for the mistake on 2 ranks).
"""

import warnings

import numpy as np
import torch
from _common import done, world
from scipy.stats import chi2

from mpisgd.comm import Communicator
from mpisgd.privacy.clipping import weight_rule
from mpisgd.privacy.noise import GaussianNoise, SeededNoiseWarning, dp_release
from mpisgd.privacy.per_sample import PerSampleGradients

comm = world()
torch.set_num_threads(1)
dist = Communicator(comm)
p, rank = comm.size, comm.rank

# -- property 4: distributed sum == single-process sum --------------------------------------------
torch.manual_seed(3)
model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3)).double()
loss = torch.nn.functional.cross_entropy
generator = torch.Generator().manual_seed(7)
x = torch.randn(23, 6, dtype=torch.float64, generator=generator)
y = torch.randint(0, 3, (23,), generator=generator)
owner = np.arange(23) % max(p - 1, 1)  # sample i belongs to rank owner[i]: none to the last rank if p > 1
mine = torch.from_numpy(np.flatnonzero(owner == rank))

rows = []
for i in range(23):
    model.zero_grad()
    loss(model(x[i : i + 1]), y[i : i + 1]).backward()
    rows.append(torch.cat([q.grad.reshape(-1) for q in model.parameters()]))
every = torch.stack(rows)
norms = every.norm(dim=1)
clip, r, expected_batch = float(norms.median()), 0.05, 11.5  # q N: any positive constant
spec = {"dpsgd": torch.clamp(clip / norms, max=1.0), "psac": clip / (norms + r / (norms + r)),
        "nsgd": clip / (norms + r)}
grads = PerSampleGradients(model, loss, max_batch=4)
silent = GaussianNoise(0.0, clip, ranks=p, rank=rank)  # sigma = 0: no noise
for name, weights in spec.items():
    local = grads.weighted_sum(x[mine], y[mine], weight_rule(name, clip, None if name == "dpsgd" else r))
    released = dp_release(local.sum, expected_batch, dist, silent)
    oracle = weights @ every / expected_batch
    assert torch.allclose(released, oracle, rtol=0, atol=1e-13), (name, (released - oracle).abs().max())

# -- property 5: released noise std is sigma*C whatever p and the placement ------------------------
SIGMA, CLIP, D, T = 1.3, 0.7, 5000, 20
N = D * T
low, high = chi2.ppf(1e-6, N) / N, chi2.isf(1e-6, N) / N
for placement in ("split", "one"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeededNoiseWarning)
        noise = GaussianNoise(SIGMA, CLIP, ranks=p, rank=rank, placement=placement, root=p - 1, seed=2024)
    values = []
    for step in range(T):
        buffer = torch.zeros(D, dtype=torch.float64)
        dp_release(buffer, 4.0, dist, noise)
        values.append(buffer * 4.0)  # the released sum, before the division by q N
    released = torch.cat(values).numpy()
    ratio = float(np.mean(released**2)) / (SIGMA * CLIP) ** 2
    assert low < ratio < high, f"{placement} on {p} ranks: s^2/(sigma C)^2 = {ratio:.4f}, accepted ({low:.4f}, {high:.4f})"
    assert not np.array_equal(values[0], values[1]), "the same noise twice"
    same = comm.allgather(released[:5].tobytes())
    assert all(s == same[0] for s in same), "ranks released different sums"
    if rank == 0:
        print(f"{placement} p={p}: std/(sigma C) = {ratio**0.5:.4f}", flush=True)

dist.free()
done(comm)
