"""Communicator: device-array path on CPU, node communicator, statistics, agreement.

There is no GPU here, so device memory is played by a host array that only
exposes ``__cuda_array_interface__`` (as mpi4py's own tests do). Its backend
records every stream synchronization and staging copy, so the test can see
that the stream is synchronized before MPI touches the buffer, that CUDA-aware
mode hands the device buffer to MPI directly, and that otherwise it is staged
through host memory.
"""

import numpy as np
from _common import done, world

from mpisgd.comm import AgreementError, Backend, Communicator, device_index, register_backend

comm = world()
events = []


class FakeDeviceArray:
    """Host memory that presents itself only as CUDA memory."""

    def __init__(self, values):
        self.host = np.ascontiguousarray(values)
        self.shape, self.dtype, self.nbytes = self.host.shape, self.host.dtype, self.host.nbytes

    @property
    def __cuda_array_interface__(self):
        events.append("mpi-touched-device-buffer")
        return {"shape": self.host.shape, "typestr": self.host.dtype.str, "version": 3,
                "data": (self.host.ctypes.data, False), "strides": None, "stream": None}


class FakeDeviceBackend(Backend):
    name, is_device = "fake-cuda", True

    def matches(self, array):
        return isinstance(array, FakeDeviceArray)

    def synchronize(self, array):
        events.append("synchronize")

    def to_host(self, array, host):
        events.append("to_host")
        host[...] = array.host

    def from_host(self, host, array):
        events.append("from_host")
        array.host[...] = host

    def scale(self, array, factor):
        array.host *= factor

    def address(self, array):
        return array.host.ctypes.data

    def host_buffer(self, array):
        events.append("host_buffer")
        return np.empty(array.shape, array.dtype)


register_backend(FakeDeviceBackend())
p = comm.size
expected_mean = (p + 1) / 2

# staged (default): synchronize, copy to host, MPI on host memory, copy back, average
staged = Communicator(comm, cuda_aware=False)
array = FakeDeviceArray(np.full(5, comm.rank + 1.0))
request = staged.iallreduce(array, average=True)
request.wait()
assert events == ["host_buffer", "synchronize", "to_host", "from_host"] or \
    events == ["synchronize", "host_buffer", "to_host", "from_host"], events
assert np.all(array.host == expected_mean), array.host
events.clear()
staged.allreduce(array)  # the staging buffer of the same device array is reused
assert events == ["synchronize", "to_host", "from_host"], events
assert np.all(array.host == expected_mean * p), array.host

# CUDA-aware (opt-in): synchronize, then MPI reads the device buffer itself
events.clear()
aware = Communicator(comm, cuda_aware=True)
array = FakeDeviceArray(np.full(5, comm.rank + 1.0))
aware.allreduce(array, average=True)
assert events[0] == "synchronize" and "mpi-touched-device-buffer" in events, events
assert "to_host" not in events, events
assert np.all(array.host == expected_mean), array.host

# statistics: bytes of a bandwidth-optimal all-reduce, time blocked counted
assert aware.stats.bytes_sent == 2 * (p - 1) * 40 // p, aware.stats
assert aware.stats.calls == 1 and aware.stats.wait_s >= 0

# node-local communicator and rank -> GPU mapping
assert aware.local_size == p and aware.local_rank == comm.rank  # one host here
assert device_index(aware.local_rank, 0) is None
assert [device_index(r, 2) for r in range(4)] == [0, 1, 0, 1]
assert aware.thread_level >= 0

# the private communicator is a duplicate: traffic on it never matches the user's
assert aware.mpi != comm and aware.mpi.Get_size() == p

# agreement: equal descriptions pass, a difference is an error on every rank
aware.check_agreement({"shape": [3, 4]})
try:
    aware.check_agreement({"shape": [3, 4 + (comm.rank == p - 1)]})
    raised = p == 1
except AgreementError as error:
    raised = "rank" in str(error) and "shape" in str(error)
assert raised, "a mismatch must raise on every rank"
for c in (staged, aware):
    c.free()
done(comm)
