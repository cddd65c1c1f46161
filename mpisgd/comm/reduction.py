"""A prepared in-place all-reduce of one array: sum, mean or weighted mean, started as often as needed.

Everything that does not change from call to call is looked up once, when
the reduction is built: the array's backend, the buffer handed to MPI (a
numpy view of a host torch tensor, which MPI reads through the buffer
protocol, or a host staging buffer for device memory), the MPI operation,
the bytes counted and the completion step. A training step that reduces
the same gradient buckets every time then costs one ``Iallreduce`` and one
``Wait`` per bucket and little Python around them.
"""

from time import perf_counter

import numpy as np

from ..arrays import backend_for
from . import activity
from .mpi import MPI
from .request import Request


class Reduction:
    """``sum_i x_i`` of ``array`` over the ranks, in place; or its mean, or its weighted mean.

    ``average=True``: ``(1/p) sum_i x_i``. ``weight=w`` (this rank's weight
    ``w_i > 0``): ``sum_i w_i x_i / sum_i w_i`` (``average`` is then
    implied). For the weighted mean each rank scales its array by ``w_i``
    before the sum and the weights' sum is all-reduced alongside the array
    (a second, 8-byte all-reduce completed with the first), so nothing is
    cached: the weights may change between reductions, and every rank must
    pass a weight whenever one does (as with any collective).

    Built by :meth:`Communicator.reduction`; :meth:`start` begins it without
    blocking and returns a :class:`~mpisgd.comm.Request`, :meth:`run` does it
    blocking. Statistics count one call of ``2 (p-1)/p`` times the bytes.
    """

    __slots__ = ("comm", "array", "backend", "buffer", "staged", "device", "weight", "weights", "moved",
                 "_complete", "what")

    def __init__(self, comm, array, *, average: bool = False, weight=None):
        self.comm = comm  # a Communicator
        self.array = array
        self.backend = backend = backend_for(array)
        self.device = backend.is_on_device(array)
        self.staged = self.device and not comm.cuda_aware
        if self.staged:
            self.buffer = comm.staging_buffer(array, backend)
        else:
            self.buffer = array if self.device else backend.host_view(array)
        self.weight = None if weight is None else float(weight)
        self.weights = None if weight is None else np.zeros(1)  # sum_i w_i once reduced
        nbytes = int(array.nbytes) + (0 if weight is None else 8)
        self.moved = 2 * (comm.size - 1) * nbytes // comm.size
        self.what = f"all-reduce of {nbytes} bytes over {comm.size} ranks"  # for the watchdog and the trace
        self._complete = self._completion(average)

    def _completion(self, average: bool):
        """What runs once the all-reduce is complete (None: nothing)."""
        array, backend, buffer = self.array, self.backend, self.buffer
        copy_back = (lambda: backend.from_host(buffer, array)) if self.staged else None
        if self.weight is not None:
            weights = self.weights

            def weighted():
                if copy_back is not None:
                    copy_back()
                backend.scale(array, 1.0 / weights[0])

            return weighted
        if not average:
            return copy_back
        factor = 1.0 / self.comm.size
        if copy_back is None:
            return lambda: backend.scale(array, factor)

        def mean():
            copy_back()
            backend.scale(array, factor)

        return mean

    def _prepare(self) -> None:
        """Weight the array, finish the device's work and stage it; count the call."""
        if self.weight is not None:
            self.backend.scale(self.array, self.weight)
            self.weights[0] = self.weight
        if self.device:
            self.backend.synchronize(self.array)  # the stream must finish before MPI reads
            if self.staged:
                self.backend.to_host(self.array, self.buffer)
        self.comm.stats.count(self.moved, self.moved)

    def start(self) -> Request:
        """Begin the all-reduce (``Iallreduce``); the result is in place once the request completes."""
        self._prepare()
        mpi = self.comm.mpi
        request = mpi.Iallreduce(MPI.IN_PLACE, self.buffer, op=MPI.SUM)
        if self.weights is not None:
            request = _Both(request, mpi.Iallreduce(MPI.IN_PLACE, self.weights, op=MPI.SUM))
        if activity.TRACE is not None:
            activity.posted("Iallreduce", self.what)
        return Request(request, self.comm.stats, self._complete, "Iallreduce: " + self.what)

    def run(self) -> None:
        """The all-reduce, blocking (``Allreduce``); its time counts as time blocked."""
        self._prepare()
        mpi, stats = self.comm.mpi, self.comm.stats
        start = perf_counter()
        previous = activity.enter("Allreduce", self.what) if activity.ON else None
        mpi.Allreduce(MPI.IN_PLACE, self.buffer, op=MPI.SUM)
        if self.weights is not None:
            mpi.Allreduce(MPI.IN_PLACE, self.weights, op=MPI.SUM)
        if activity.ON:
            activity.leave(previous)
        stats.wait_s += perf_counter() - start
        if self._complete is not None:
            self._complete()


class _Both:
    """Two MPI requests tested and waited for as one."""

    __slots__ = ("requests",)

    def __init__(self, *requests):
        self.requests = list(requests)

    def Test(self) -> bool:
        return MPI.Request.Testall(self.requests)

    def Wait(self) -> None:
        MPI.Request.Waitall(self.requests)
