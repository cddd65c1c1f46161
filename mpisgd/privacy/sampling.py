"""Poisson sampling of a rank's shard: each sample joins the batch independently with probability q.

The accountants' analysis (the Poisson-subsampled Gaussian mechanism,
ALGORITHMS.md §10.3) assumes exactly this sampling, with rate q over the
whole training set; each rank samples its own shard with the same q, so the
global batch is a Poisson sample of the union. Batch sizes vary from step to
step and may be 0 (a rank then contributes a zero sum); the DP update divides
by the *expected* global batch size ``q N`` (:func:`mpisgd.privacy.noise.dp_release`).

Which samples are drawn must stay secret too, so the generator comes from
the operating system's entropy unless one is passed (tests).

    >>> import numpy
    >>> sampler = PoissonSampler(1000, 0.04, rng=numpy.random.default_rng(0))
    >>> batch = sampler.next()                  # int64 indices into the shard, sorted
    >>> sampler.expected_size
    40.0
"""

import numpy as np

from ..errors import UsageError


def poisson_batch(rng: np.random.Generator, size: int, rate: float) -> np.ndarray:
    """The indices ``i < size`` for which an independent Bernoulli(``rate``) draw came up (possibly none)."""
    return np.flatnonzero(rng.random(size) < rate)


class PoissonSampler:
    """Endless Poisson-sampled batches from one rank's shard of ``size`` samples, rate q = ``rate``.

    Same interface as the harness's ``ShardSampler``: ``next()`` gives the
    indices of the next batch.
    """

    def __init__(self, size: int, rate: float, *, rng: np.random.Generator = None):
        if not 0 < rate <= 1:
            raise UsageError(f"the sample rate q must lie in (0, 1], got {rate}")
        if size < 0:
            raise UsageError(f"a shard cannot have {size} samples")
        self.size, self.rate = size, rate
        self.rng = np.random.default_rng() if rng is None else rng

    @property
    def expected_size(self) -> float:
        """This rank's expected batch size ``q * size``."""
        return self.rate * self.size

    def next(self) -> np.ndarray:
        return poisson_batch(self.rng, self.size, self.rate)
