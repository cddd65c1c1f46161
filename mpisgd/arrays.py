"""Array backends: how numpy, torch, cupy and other CUDA arrays reach MPI.

Every algorithm works on flat 1-D arrays of any of these kinds. The backend
answers the few questions the communication layer has about an array: is the
memory on a device, how to synchronize the stream that produced it, how to
copy it to and from a host staging buffer, and how to allocate a like array.

Device memory is handed to MPI directly only when the MPI library is
CUDA-aware and the user said so (``cuda_aware=True`` or
``MPISGD_CUDA_AWARE=1``); otherwise it is staged through host memory.
A library not known here can be taught with :func:`register_backend`.

Example::

    >>> import numpy
    >>> backend = backend_for(numpy.ones(4, dtype=numpy.float32))
    >>> backend.name, backend.is_device, backend.dot(numpy.ones(4), numpy.ones(4))
    ('numpy', False, 4.0)
    >>> backend_for([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: mpisgd does not know arrays of type list; use numpy, torch or cupy, or register a backend with mpisgd.comm.register_backend()
"""

import sys

import numpy as np


class Backend:
    """Operations mpisgd needs from one kind of array (default: numpy)."""

    name = "numpy"
    is_device = False

    def matches(self, array) -> bool:
        return isinstance(array, np.ndarray)

    def is_on_device(self, array) -> bool:
        return self.is_device

    def synchronize(self, array) -> None:
        """Wait until the work that produces ``array`` has finished."""

    def zeros_like(self, array):
        return np.zeros_like(array)

    def copy(self, array):
        return array.copy()

    def numpy_dtype(self, array) -> np.dtype:
        return np.dtype(array.dtype)

    def address(self, array) -> int:
        """Address of the array's first element (identifies a staging buffer)."""
        return array.__array_interface__["data"][0]

    def host_buffer(self, array) -> np.ndarray:
        """A host array of the same size and dtype, for staging."""
        return np.empty(array.shape, dtype=self.numpy_dtype(array))

    def host_view(self, array):
        """What MPI reads fastest for a host ``array``: the same memory, no copy (numpy: itself)."""
        return array

    def to_host(self, array, host: np.ndarray) -> None:
        host[...] = array

    def from_host(self, host: np.ndarray, array) -> None:
        array[...] = host

    def scale(self, array, factor: float) -> None:
        array *= factor

    def dot(self, a, b) -> float:
        return float(np.dot(a, b))

    def from_numpy(self, values: np.ndarray, like):
        """A new array of ``like``'s kind (and device) holding ``values``."""
        out = self.zeros_like(like)
        self.from_host(np.ascontiguousarray(values, dtype=self.numpy_dtype(like)), out)
        return out


class TorchBackend(Backend):
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def matches(self, array) -> bool:
        return isinstance(array, self.torch.Tensor)

    def is_on_device(self, array) -> bool:
        return array.device.type != "cpu"

    def synchronize(self, array) -> None:
        if array.device.type == "cuda":
            self.torch.cuda.current_stream(array.device).synchronize()

    def zeros_like(self, array):
        return self.torch.zeros_like(array)

    def copy(self, array):
        return array.detach().clone()

    def numpy_dtype(self, array) -> np.dtype:
        return self.torch.empty((), dtype=array.dtype).numpy().dtype

    def address(self, array) -> int:
        return array.data_ptr()

    def host_view(self, array):
        try:  # a numpy view takes the buffer protocol: cheaper per MPI call than DLPack
            return array.detach().numpy()
        except (TypeError, RuntimeError):  # no numpy dtype (bfloat16): MPI takes the tensor itself
            return array

    def host_buffer(self, array) -> np.ndarray:
        pinned = self.torch.cuda.is_available()
        host = self.torch.empty(array.shape, dtype=array.dtype, pin_memory=pinned)
        return host.numpy()

    def to_host(self, array, host: np.ndarray) -> None:
        self.torch.from_numpy(host).copy_(array)

    def from_host(self, host: np.ndarray, array) -> None:
        array.copy_(self.torch.from_numpy(host))

    def scale(self, array, factor: float) -> None:
        array.mul_(factor)

    def dot(self, a, b) -> float:
        return float(self.torch.dot(a, b))


class CupyBackend(Backend):
    name = "cupy"
    is_device = True

    def __init__(self):
        import cupy

        self.cupy = cupy

    def matches(self, array) -> bool:
        return isinstance(array, self.cupy.ndarray)

    def synchronize(self, array) -> None:
        self.cupy.cuda.get_current_stream().synchronize()

    def zeros_like(self, array):
        return self.cupy.zeros_like(array)

    def address(self, array) -> int:
        return array.data.ptr

    def host_buffer(self, array) -> np.ndarray:
        pinned = self.cupy.cuda.alloc_pinned_memory(array.nbytes)
        return np.frombuffer(pinned, array.dtype, array.size).reshape(array.shape)

    def to_host(self, array, host: np.ndarray) -> None:
        array.get(out=host)

    def from_host(self, host: np.ndarray, array) -> None:
        array.set(host)

    def dot(self, a, b) -> float:
        return float(self.cupy.dot(a, b))


_registered: list = []
_loaded: dict = {}
_NUMPY = Backend()
_OPTIONAL = {"torch": TorchBackend, "cupy": CupyBackend}


def register_backend(backend: Backend) -> None:
    """Teach mpisgd a new array type; registered backends are tried first."""
    _registered.insert(0, backend)


def _optional_backends() -> list:
    """Backends of the array libraries already imported (an array of a library
    that was never imported cannot exist, so torch and cupy are never imported here)."""
    for module, cls in _OPTIONAL.items():
        if module not in _loaded and module in sys.modules:
            _loaded[module] = cls()
    return list(_loaded.values())


def backend_for(array) -> Backend:
    """The backend that handles ``array``; a clear error for unknown types."""
    for backend in [*_registered, _NUMPY, *_optional_backends()]:
        if backend.matches(array):
            return backend
    raise TypeError(
        f"mpisgd does not know arrays of type {type(array).__name__}; use numpy, "
        "torch or cupy, or register a backend with mpisgd.comm.register_backend()"
    )
