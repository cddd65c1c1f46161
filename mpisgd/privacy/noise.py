"""Gaussian noise of standard deviation sigma*C, added once per global update, and the DP release of one step.

Noise placements (``placement``), for p ranks whose noised values are summed:

- ``"split"``: every rank adds ``N(0, sigma^2 C^2 / p)`` before the all-reduce
  SUM; the sum carries ``N(0, sigma^2 C^2)``. No rank knows the total noise,
  but the guarantee still assumes that the ranks do not collude.
- ``"one"``: the designated rank ``root`` adds ``N(0, sigma^2 C^2)``, the
  others nothing (Opacus's ``DistributedDPOptimizer`` adds it on rank 0).
- ``"each"``: every rank adds the full ``N(0, sigma^2 C^2)`` to what it sends:
  for gossip and master-worker algorithms, where no aggregator is trusted.

The generator is never seeded by default: each rank seeds its own from the
operating system's entropy (:mod:`secrets`). ``seed=`` exists for tests; it
warns (:class:`SeededNoiseWarning`) because a known seed makes the noise
known and voids the guarantee. Each rank derives its own stream from
``(seed, rank)``: one stream shared by the ranks would add the same noise p
times and release std sigma*C*sqrt(p) with "split".

Buffers: torch tensors get noise from a ``torch.Generator`` on the tensor's
device (CUDA included: a CUDA generator, the noise is made on the GPU);
numpy and other backends from a numpy ``Generator`` on the host. These are
the libraries' ordinary PRNGs (Mersenne Twister / Philox / PCG64), not
cryptographically secure ones, and floating-point noise has known side
channels (Mironov 2012); see docs/privacy.md.
"""

import secrets
import warnings

import numpy as np

from ..arrays import backend_for
from ..errors import UsageError

PLACEMENTS = ("split", "one", "each")


class SeededNoiseWarning(UserWarning):
    """The DP noise was seeded: reproducible, and therefore not private."""


class GaussianNoise:
    """Adds this rank's share of ``N(0, (noise_multiplier * clip)^2 I)`` to a flat buffer, in place.

    ``noise_multiplier``: sigma; ``clip``: C; ``ranks``/``rank``: p and this
    rank; ``placement``: "split", "one" or "each" (see the module);
    ``root``: the rank that adds the noise with "one".
    """

    def __init__(self, noise_multiplier: float, clip: float, *, ranks: int = 1, rank: int = 0,
                 placement: str = "split", root: int = 0, seed: int = None):
        if placement not in PLACEMENTS:
            raise UsageError(f"unknown noise placement {placement!r}; choose from {', '.join(PLACEMENTS)}")
        if not noise_multiplier >= 0 or not clip > 0:
            raise UsageError(f"the noise multiplier must be >= 0 and the clip > 0, got {noise_multiplier} and {clip}")
        if not 0 <= root < ranks or not 0 <= rank < ranks:
            raise UsageError(f"rank {rank} and root {root} must lie in 0..{ranks - 1}")
        self.noise_multiplier, self.clip, self.placement = noise_multiplier, clip, placement
        self.std = noise_multiplier * clip  # sigma*C: the released noise
        if placement == "split":
            self.local_std = self.std / np.sqrt(ranks)
        else:
            self.local_std = self.std if placement == "each" or rank == root else 0.0
        if seed is not None:
            warnings.warn(f"the DP noise is seeded (seed {seed}): reproducible, for tests only, NOT private",
                          SeededNoiseWarning, stacklevel=2)
        self.seeded = seed is not None
        entropy = secrets.randbits(128) if seed is None else int(seed)
        self._sequence = np.random.SeedSequence(entropy, spawn_key=(rank,))  # this rank's own stream
        self._generators = {}

    def _seed(self) -> int:
        """A 63-bit seed for this rank's next generator (one per device)."""
        child = self._sequence.spawn(1)[0]
        return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def _generator(self, key, make):
        generator = self._generators.get(key)
        if generator is None:
            generator = self._generators[key] = make(self._seed())
        return generator

    def sample(self, like):
        """A fresh draw of this rank's noise, shaped and typed like ``like`` (zeros when it adds none)."""
        backend = backend_for(like)
        if backend.name == "torch":
            import torch

            generator = self._generator(str(like.device), lambda s: torch.Generator(like.device).manual_seed(s))
            noise = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
            return noise.mul_(self.local_std)
        generator = self._generator("numpy", np.random.default_rng)
        values = generator.standard_normal(like.shape) * self.local_std
        return values.astype(backend.numpy_dtype(like)) if backend.name == "numpy" else backend.from_numpy(values, like)

    def add(self, buffer):
        """Add this rank's noise to ``buffer`` in place (nothing when its share is zero); returns it."""
        if self.local_std > 0:
            buffer += self.sample(buffer)
        return buffer


def dp_release(total, expected_batch: float, comm, noise: GaussianNoise):
    """One DP update of the all-reduce family, in place: ``(sum_r (S_r + noise_r)) / (q N)``.

    ``total``: this rank's weighted sum ``S_r = sum_i w(||g_i||) g_i`` (flat,
    any backend); ``expected_batch``: the expected global batch size ``q N``
    (ALGORITHMS.md §10.2: a constant, not the realized Poisson batch size);
    ``comm``: an :class:`mpisgd.comm.Communicator`; ``noise``: this rank's
    :class:`GaussianNoise` ("split" or "one"). Every rank ends with the
    same noised mean gradient.
    """
    if not expected_batch > 0:
        raise UsageError(f"the expected batch size q*N must be > 0, got {expected_batch}")
    noise.add(total)
    comm.allreduce(total)
    backend_for(total).scale(total, 1.0 / expected_batch)
    return total
