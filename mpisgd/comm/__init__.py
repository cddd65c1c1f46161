"""The only layer of mpisgd that calls MPI."""

from .abort import install_abort_hook
from .backoff import Backoff
from ..arrays import Backend, backend_for, register_backend
from .communicator import Communicator, resolve_cuda_aware
from .device import device_index, select_device
from ..errors import AgreementError, MPISGDError, UsageError
from .messenger import Message, Messenger
from .request import Completed, Request, test_all, wait_all
from .stats import CommStats
from .throttle import Throttle

__all__ = [
    "AgreementError",
    "Backend",
    "Backoff",
    "CommStats",
    "Completed",
    "Communicator",
    "MPISGDError",
    "Message",
    "Messenger",
    "Request",
    "Throttle",
    "UsageError",
    "backend_for",
    "device_index",
    "install_abort_hook",
    "register_backend",
    "resolve_cuda_aware",
    "select_device",
    "test_all",
    "wait_all",
]
