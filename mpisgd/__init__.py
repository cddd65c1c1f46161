"""mpisgd: distributed and decentralized SGD algorithms on real MPI.

Torch users compose their optimizer with an algorithm::

    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)

Codes without torch use the flat-vector algorithms in :mod:`mpisgd.collective`
directly. The training harness behind ``python -m mpisgd train`` is
:func:`mpisgd.train.run`.
"""

from . import collective  # noqa: F401  (registers the algorithms)
from .algorithm import ALGORITHMS, Algorithm, Option, get_algorithm, register
from .comm import AgreementError, Communicator, UsageError
from .flat import FlatParams
from .optimizer import DistributedOptimizer

__version__ = "0.1.0"


class SyncSGD(DistributedOptimizer):
    """Synchronous all-reduce SGD around a torch optimizer (algorithm ``sync``).

    Options: ``bucket_mb`` (gradient bucket size, MiB). See
    :class:`mpisgd.collective.BucketedAllReduce`.
    """

    algorithm_name = "sync"


__all__ = [
    "ALGORITHMS",
    "AgreementError",
    "Algorithm",
    "Communicator",
    "DistributedOptimizer",
    "FlatParams",
    "Option",
    "SyncSGD",
    "UsageError",
    "get_algorithm",
    "register",
]
