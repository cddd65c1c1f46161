"""Torch binding: torch optimizers that run an mpisgd algorithm around a local optimizer.

``DistributedOptimizer(optimizer, algorithm, ...)`` is the generic entry; one
class per algorithm (``SyncSGD``, ``CoCoDSGD``, ...) fixes the algorithm and
shows its options in its signature. All are ``torch.optim.Optimizer``s that
share ``param_groups``/``state``/``defaults`` with the optimizer they wrap.
``broadcast_module`` copies rank 0's parameters and buffers to every rank;
``AdaHessian`` is a local optimizer (Hutchinson Hessian diagonal) for any of them.
Importing this package imports torch; ``import mpisgd`` alone does not.
"""

from .adahessian import AdaHessian
from .broadcast import broadcast_module
from .classes import (ADPSGD, CLASSES, EASGD, FDA, LSGD, CoCoDSGD, DivShareSGD, ElasticGossipSGD,  # noqa: F401
                      GossipSGD, LocalSGD, SwiftSGD, SyncSGD)
from .classes import EAMSGD, EAMSGDAsync, EASGDAsync, EASGDDynamicWeighting  # noqa: F401
from .optimizer import DistributedOptimizer

__all__ = ["AdaHessian", "DistributedOptimizer", "broadcast_module", *CLASSES]
