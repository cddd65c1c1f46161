"""The local step of a DP run: Poisson-sampled batch, per-sample weighted gradients, noise, the algorithm's step.

Each step, on each trainer (ALGORITHMS.md §10.1)::

    B_t  : each sample of the shard joins with probability q (or a shuffled batch of B: --dp-sampling shuffle)
    g    = ( sum_{i in B_t} w(||g_i||) g_i  +  noise ) / expected batch
    then the algorithm's step with g as the gradient

``w`` is the clipping rule (:mod:`mpisgd.privacy.clipping`), the per-sample
gradients come from ``torch.func`` in virtual batches
(:class:`~mpisgd.privacy.per_sample.PerSampleGradients`), written straight
into the flat gradient buffer the algorithm communicates. Noise and the
divisor depend on the guarantee (:mod:`.privacy`): *central* (sync) adds this
rank's share of N(0, σ²C²) and divides by the expected global batch
``q n`` times 1/p, so that sync's mean over the p ranks is
``(sum over all ranks + N(0, σ²C²)) / (q n)``; *per node* adds the full
N(0, σ²C²) and divides by this node's expected batch ``q n_r``. Dividing by
the expected batch, a constant, rather than the realized Poisson batch size
keeps the sensitivity at C and every algorithm's plain averaging exact.
"""

import secrets
import warnings

import numpy as np
import torch

from ..privacy.clipping import weight_rule
from ..privacy.noise import GaussianNoise, SeededNoiseWarning
from ..privacy.per_sample import PerSampleGradients
from ..privacy.sampling import PoissonSampler
from .step import ShardSampler, loss_of


def _seed(seed, *key) -> int:
    """A seed from the OS's entropy, or (``--dp-seed``) one derived from (seed, *key)."""
    if seed is None:
        return secrets.randbits(128)
    return int(np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint64)[0])


class PrivateStep:
    """One DP step on this rank's shard (``train``: inputs and targets); calling it returns the loss.

    ``privacy``: the run's :class:`~.privacy.PrivateRun` (noise resolved); ``ranks``/``rank``: the
    communicator the central noise is split over."""

    def __init__(self, model, dist, task: str, train, privacy, *, ranks: int, rank: int):
        self.model, self.dist, self.task = model, dist, task
        self.x, self.y = train
        n_shard = len(self.y)
        if privacy.sampling == "poisson":
            rng = np.random.default_rng(_seed(privacy.seed, rank, 0))
            self.sampler, expected = PoissonSampler(n_shard, privacy.q, rng=rng), privacy.q * n_shard
        else:
            self.sampler = ShardSampler(n_shard, privacy.batch_size, seed=_seed(privacy.seed, rank, 0))
            expected = privacy.batch_size
        # central: sync averages over p ranks, so each divides by the expected global batch / p = B
        self.scale = 1.0 / (privacy.batch_size if privacy.central else max(expected, 1e-12))
        self.weight = weight_rule(privacy.rule, privacy.clip, privacy.r)
        self.grads = PerSampleGradients(model, lambda out, y: loss_of(task, out, y),
                                        max_batch=privacy.virtual_batch)
        seed = None if privacy.seed is None else _seed(privacy.seed, 1)  # GaussianNoise derives each rank's own
        with warnings.catch_warnings():  # warned once, by rank 0 (PrivateRun.resolve)
            warnings.simplefilter("ignore", SeededNoiseWarning)
            self.noise = GaussianNoise(privacy.sigma, privacy.clip, ranks=ranks, rank=rank,
                                       placement=privacy.placement, seed=seed)

    def __call__(self) -> float:
        index = torch.from_numpy(self.sampler.next()).to(self.x.device)
        self.dist.zero_grad()
        total = self.grads.weighted_sum(self.x[index], self.y[index], self.weight, out=self.dist.flat.grads)
        self.noise.add(total.sum)
        total.sum.mul_(self.scale)
        self.dist.step()
        value = total.losses.mean().item() if len(total.losses) else 0.0  # an empty Poisson batch: no loss
        self.dist.report_loss(value)
        return value
