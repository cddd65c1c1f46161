"""mpisgd: distributed and decentralized SGD algorithms on real MPI.

Torch users compose their optimizer with an algorithm::

    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)

Codes without torch use the flat-vector algorithms in :mod:`mpisgd.collective`
directly. The training harness behind ``python -m mpisgd train`` is
:func:`mpisgd.train.run`.
"""

from . import collective, gossip  # noqa: F401  (registers the algorithms)
from .algorithm import ALGORITHMS, Algorithm, Option, get_algorithm, register
from .comm import AgreementError, Communicator, UsageError
from .flat import FlatParams
from .optimizer import DistributedOptimizer

__version__ = "0.1.0"


def _bind(class_name: str, algorithm: str, flat_class) -> type:
    """The torch optimizer wrapper of one registered algorithm."""
    doc = (f"``{algorithm}`` around a torch optimizer: ``{class_name}(optimizer, comm=None, **options)``.\n\n"
           f"Options and maths: :class:`{flat_class.__module__}.{flat_class.__name__}`.")
    return type(class_name, (DistributedOptimizer,), {"algorithm_name": algorithm, "__doc__": doc,
                                                      "__module__": __name__})


SyncSGD = _bind("SyncSGD", "sync", collective.BucketedAllReduce)
LocalSGD = _bind("LocalSGD", "local", collective.PeriodicAveraging)
CoCoDSGD = _bind("CoCoDSGD", "cocod", collective.CoCoD)
FDA = _bind("FDA", "fda", collective.FederatedDynamicAveraging)
EASGD = _bind("EASGD", "easgd", collective.ElasticAveraging)
LSGD = _bind("LSGD", "lsgd", collective.LeaderSGD)
GossipSGD = _bind("GossipSGD", "gossip", gossip.GossipingSGD)
ElasticGossipSGD = _bind("ElasticGossipSGD", "elastic-gossip", gossip.ElasticGossip)
SwiftSGD = _bind("SwiftSGD", "swift", gossip.Swift)
DivShareSGD = _bind("DivShareSGD", "divshare", gossip.DivShare)
ADPSGD = _bind("ADPSGD", "adpsgd", gossip.ADPSGD)


__all__ = [
    "ADPSGD",
    "DivShareSGD",
    "SwiftSGD",
    "ALGORITHMS",
    "AgreementError",
    "Algorithm",
    "Communicator",
    "CoCoDSGD",
    "DistributedOptimizer",
    "EASGD",
    "ElasticGossipSGD",
    "FDA",
    "FlatParams",
    "GossipSGD",
    "LSGD",
    "LocalSGD",
    "Option",
    "SyncSGD",
    "UsageError",
    "get_algorithm",
    "register",
]
