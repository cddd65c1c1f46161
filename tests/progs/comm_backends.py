"""Communicator: device-array path on CPU, weighted means, node communicator, statistics, agreement.

There is no GPU here, so device memory is played by a host array that only
exposes ``__cuda_array_interface__`` (as mpi4py's own tests do). Its backend
records every stream synchronization and staging copy, so the test can see
that the stream is synchronized before MPI touches the buffer, that CUDA-aware
mode hands the device buffer to MPI directly, and that otherwise it is staged
through host memory.
"""

import numpy as np
import torch
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

# weighted mean (oracle from the spec): sum_i w_i x_i / sum_i w_i, with known per-rank values
def values(rank):
    return np.arange(7, dtype=np.float64) * (rank + 1) - 3.0 * rank


def weighted_mean(weight_of):
    weights = [weight_of(r) for r in range(p)]
    return sum(w * values(r) for r, w in enumerate(weights)) / sum(weights)


weighted = Communicator(comm)
x = values(comm.rank)
request = weighted.iallreduce(x, weight=1.0 + 2 * comm.rank)  # w_i = 1 + 2i
request.wait()
assert np.allclose(x, weighted_mean(lambda r: 1.0 + 2 * r), rtol=0, atol=1e-12), x
assert weighted.stats.calls == 1 and weighted.stats.bytes_sent == 2 * (p - 1) * (7 * 8 + 8) // p, weighted.stats
x = values(comm.rank)
weighted.allreduce(x, weight=0.5 if comm.rank % 2 else 3.0)  # other weights next call: nothing is cached
assert np.allclose(x, weighted_mean(lambda r: 0.5 if r % 2 else 3.0), rtol=0, atol=1e-12), x
t = torch.tensor(values(comm.rank), dtype=torch.float32)  # a torch CPU tensor (MPI reads a numpy view)
weighted.iallreduce(t, weight=comm.rank + 1).wait()
assert np.allclose(t.numpy(), weighted_mean(lambda r: r + 1), rtol=1e-6, atol=1e-5), t
equal = values(comm.rank)
weighted.allreduce(equal, weight=2.0)  # equal weights: the plain mean
assert np.allclose(equal, sum(values(r) for r in range(p)) / p, rtol=0, atol=1e-12), equal
staged_array = FakeDeviceArray(values(comm.rank))  # device memory staged through the host
staged.iallreduce(staged_array, weight=comm.rank + 1.0).wait()
assert np.allclose(staged_array.host, weighted_mean(lambda r: r + 1.0), rtol=0, atol=1e-12), staged_array.host
prepared = weighted.reduction(x, average=True)  # prepared once, started many times
for _ in range(3):
    x[...] = values(comm.rank)
    prepared.start().wait()
    assert np.allclose(x, sum(values(r) for r in range(p)) / p, rtol=0, atol=1e-12), x

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
for c in (staged, aware, weighted):
    c.free()
done(comm)
