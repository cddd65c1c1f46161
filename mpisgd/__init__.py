"""mpisgd: distributed and decentralized SGD algorithms on real MPI.

Torch users compose their optimizer with an algorithm::

    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)

The torch classes live in :mod:`mpisgd.torch` and are loaded (with torch) on
first use: ``import mpisgd`` imports neither torch nor ``mpi4py.MPI``. Codes
without torch use the flat-vector algorithms in :mod:`mpisgd.collective` and
:mod:`mpisgd.gossip` directly. The training harness behind
``python -m mpisgd train`` is :func:`mpisgd.train.run`.
"""

import importlib

from . import collective, gossip, masterworker  # noqa: F401  (registers the algorithms)
from .algorithm import ALGORITHMS, Algorithm, Option, get_algorithm, register
from .comm import AgreementError, Communicator, UsageError
from .flat import FlatParams

__version__ = "0.1.0"

TORCH_NAMES = ("AdaHessian", "DistributedOptimizer", "broadcast_module", "SyncSGD", "LocalSGD", "CoCoDSGD", "FDA",
               "EASGD", "EAMSGD", "LSGD", "GossipSGD", "ElasticGossipSGD", "SwiftSGD", "DivShareSGD", "ADPSGD",
               "EASGDAsync", "EAMSGDAsync", "EASGDDynamicWeighting")


def __getattr__(name: str):
    """The torch binding's names, imported (with torch) when first asked for."""
    if name == "torch":
        return importlib.import_module(".torch", __name__)
    if name in TORCH_NAMES:
        value = getattr(importlib.import_module(".torch", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(TORCH_NAMES))


__all__ = [
    "ALGORITHMS",
    "AgreementError",
    "Algorithm",
    "Communicator",
    "FlatParams",
    "Option",
    "UsageError",
    "get_algorithm",
    "register",
    *TORCH_NAMES,
]
