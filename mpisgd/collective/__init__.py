"""Collective algorithms: every rank takes part in each collective.

One module per algorithm, each a class over a flat parameter vector
(registered name in brackets): BucketedAllReduce [sync],
PeriodicAveraging [local], CoCoD [cocod], FederatedDynamicAveraging [fda],
ElasticAveraging [easgd], ElasticMomentum [eamsgd], LeaderSGD [lsgd].
"""

from .cocod import CoCoD
from .easgd import ElasticAveraging, ElasticMomentum
from .fda import FederatedDynamicAveraging
from .local import PeriodicAveraging
from .lsgd import LeaderSGD
from .sync import BucketedAllReduce

__all__ = ["BucketedAllReduce", "CoCoD", "ElasticAveraging", "ElasticMomentum", "FederatedDynamicAveraging",
           "LeaderSGD", "PeriodicAveraging"]
