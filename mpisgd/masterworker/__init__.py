"""The master-worker family: AsyVRSC (distributed and shared memory), asynchronous EASGD and EAMSGD
(easgd-async, eamsgd-async),
and EASGD with dynamic weighting against failed workers.

Servers (masters) and workers are ranks of one communicator; the ``servers``
option says how many of the first ranks serve. The messaging layer they all
use is :mod:`mpisgd.comm.service` (request/reply with ``ANY_SOURCE``, a
deadline on every wait, a shutdown that needs no collective).
"""

from .asyvrsc import AsyVRSCDistributed  # noqa: F401  (registers asyvrsc-distributed)
from .easgd import AsyncElasticAveraging, AsyncElasticMomentum  # noqa: F401
from .shared import AsyVRSCShared  # noqa: F401  (registers asyvrsc-shared)
from .weighting import DynamicWeighting  # noqa: F401
