"""Compatibility name: the torch binding lives in :mod:`mpisgd.torch` (importing this imports torch)."""

from .torch.optimizer import DistributedOptimizer  # noqa: F401
