"""The communicator every mpisgd algorithm talks to.

It wraps a *duplicate* of the user's communicator (so mpisgd's messages never
mix with the user's), never initializes or finalizes MPI, knows the
node-local communicator (for rank -> GPU mapping) and keeps per-rank
statistics. Parameter traffic goes through the upper-case (buffer) mpi4py
calls on contiguous arrays of any backend; small control messages use the
pickle-based lower-case calls.
"""

import hashlib
import json
import os

import numpy as np
from .mpi import MPI

from ..arrays import backend_for
from ..errors import AgreementError
from .reduction import Reduction
from .request import Request
from .stats import CommStats

CUDA_AWARE_ENV = "MPISGD_CUDA_AWARE"


def resolve_cuda_aware(option=None) -> bool:
    """CUDA-aware MPI is opt-in: the option wins, then ``MPISGD_CUDA_AWARE``."""
    if option is not None:
        return bool(option)
    value = os.environ.get(CUDA_AWARE_ENV, "").strip().lower()
    return value in ("1", "true", "yes", "on")


class Communicator:
    """A private duplicate of ``comm`` (default ``MPI.COMM_WORLD``) with statistics.

    Example (``mpiexec -n 2 python -m mpi4py example.py``)::

        import numpy
        from mpi4py import MPI
        from mpisgd.comm import Communicator

        comm = Communicator(MPI.COMM_WORLD)
        grad = numpy.full(10, float(comm.rank))
        comm.allreduce(grad, average=True)   # in place: the mean over the ranks
        mean = grad[0]
        grad[:] = comm.rank
        comm.allreduce(grad, weight=comm.rank + 1.0)   # sum_i w_i x_i / sum_i w_i
        print(comm.rank, mean, grad[0], comm.stats.bytes_sent)
        comm.free()
    """

    def __init__(self, comm=None, *, cuda_aware=None, stats=None):
        base = MPI.COMM_WORLD if comm is None else comm
        if isinstance(base, Communicator):
            base = base.mpi
        self.mpi = base.Dup()
        self.rank = self.mpi.Get_rank()
        self.size = self.mpi.Get_size()
        self.thread_level = MPI.Query_thread()
        self.node = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = self.node.Get_rank()
        self.local_size = self.node.Get_size()
        self.cuda_aware = resolve_cuda_aware(cuda_aware)
        self.stats = CommStats() if stats is None else stats
        self._staging = {}  # (backend, address, nbytes) -> host buffer, reused across calls

    # -- buffers -----------------------------------------------------------
    def staging_buffer(self, array, backend):
        """The host buffer that stages device ``array`` for MPI (made once per array, then reused)."""
        key = (backend.name, backend.address(array), int(array.nbytes), str(array.dtype))
        host = self._staging.get(key)
        if host is None:
            host = self._staging[key] = backend.host_buffer(array)
        return host

    def _prepare(self, array):
        """Return (buffer handed to MPI, callback that completes the transfer or None)."""
        backend = backend_for(array)
        if not backend.is_on_device(array):
            return array, None
        backend.synchronize(array)  # the stream must finish before MPI reads
        if self.cuda_aware:
            return array, None
        host = self.staging_buffer(array, backend)
        backend.to_host(array, host)
        return host, lambda: backend.from_host(host, array)

    # -- collectives on arrays --------------------------------------------
    def reduction(self, array, *, average: bool = False, weight=None) -> Reduction:
        """An in-place all-reduce of ``array`` prepared once, to start many times (see :class:`Reduction`).

        Use it for an array reduced every step (gradient buckets): what
        ``iallreduce`` looks up per call is looked up here once.
        """
        return Reduction(self, array, average=average, weight=weight)

    def iallreduce(self, array, *, average: bool = False, weight=None) -> Request:
        """Start an in-place sum of ``array`` over all ranks; or its mean, or its weighted mean.

        ``average=True``: ``(1/p) sum_i x_i``. ``weight=w_i`` (this rank's
        weight): ``sum_i w_i x_i / sum_i w_i``; the weights' sum is reduced
        with the array each time, nothing is cached (see :class:`Reduction`).
        """
        return Reduction(self, array, average=average, weight=weight).start()

    def allreduce(self, array, *, average: bool = False, weight=None) -> None:
        """In-place blocking sum, mean or weighted mean of ``array`` over all ranks (as :meth:`iallreduce`)."""
        Reduction(self, array, average=average, weight=weight).run()

    def bcast(self, array, root: int = 0) -> None:
        """Broadcast ``array`` in place from ``root``.

        Counted as ``(p-1)/p * n`` bytes sent and received per rank: the
        least total traffic, ``(p-1) * n``, spread evenly over the ranks.
        """
        buffer, copy_back = self._prepare(array)
        moved = (self.size - 1) * int(array.nbytes) // self.size
        self.stats.count(moved, moved)
        with self.stats.blocked("Bcast", f"{array.nbytes} bytes from rank {root}"):
            self.mpi.Bcast(buffer, root=root)
        if copy_back is not None and self.rank != root:
            copy_back()

    def allgather(self, array) -> np.ndarray:
        """Every rank's copy of a small host array, stacked: shape ``(p, *array.shape)``."""
        array = np.ascontiguousarray(array)
        out = np.empty((self.size, *array.shape), dtype=array.dtype)
        self.stats.count((self.size - 1) * array.nbytes, (self.size - 1) * array.nbytes)
        with self.stats.blocked("Allgather", f"{array.nbytes} bytes"):
            self.mpi.Allgather(array, out)
        return out

    def split(self, color: int, key: int = None) -> "Communicator":
        """A sub-communicator (collective); it shares this one's statistics."""
        part = self.mpi.Split(color, self.rank if key is None else key)
        try:
            return Communicator(part, cuda_aware=self.cuda_aware, stats=self.stats)
        finally:
            part.Free()

    def node_communicator(self) -> "Communicator":
        """The ranks on this node (``COMM_TYPE_SHARED``), sharing this one's statistics."""
        return Communicator(self.node, cuda_aware=self.cuda_aware, stats=self.stats)

    # -- small control messages (pickled) ----------------------------------
    def allgather_object(self, obj) -> list:
        with self.stats.blocked("allgather (pickled)"):
            return self.mpi.allgather(obj)

    def bcast_object(self, obj, root: int = 0):
        with self.stats.blocked("bcast (pickled)", f"from rank {root}"):
            return self.mpi.bcast(obj, root=root)

    def barrier(self) -> None:
        with self.stats.blocked("Barrier"):
            self.mpi.Barrier()

    # -- agreement ---------------------------------------------------------
    def check_agreement(self, description: dict, what: str = "configuration") -> None:
        """Raise :class:`AgreementError` on every rank unless all ranks pass equal descriptions.

        One all-gather of a digest; the full descriptions are exchanged only
        on a mismatch, to say which field differs on which rank.
        """
        text = json.dumps(description, sort_keys=True, default=str)
        digests = self.mpi.allgather(hashlib.sha256(text.encode()).hexdigest())
        if len(set(digests)) == 1:
            return
        texts = self.mpi.allgather(text)
        reference = json.loads(texts[0])
        lines = []
        for rank, other in enumerate(texts):
            if other != texts[0]:
                lines.append(f"rank {rank} differs from rank 0 in {_first_difference(reference, json.loads(other))}")
        raise AgreementError(f"ranks disagree on the {what}: " + "; ".join(lines))

    def check_all(self, ok: bool, message: str = "", error=AgreementError) -> None:
        """Collective check: if any rank passes ``ok=False``, every rank raises ``error``."""
        results = self.mpi.allgather((bool(ok), message))
        failures = [(rank, msg) for rank, (good, msg) in enumerate(results) if not good]
        if failures:
            rank, msg = failures[0]
            raise error(msg if self.size == 1 else f"{msg} (on rank {rank})")

    # -- lifetime ----------------------------------------------------------
    def free(self) -> None:
        for name in ("node", "mpi"):
            comm = getattr(self, name, None)
            if comm is not None and comm != MPI.COMM_NULL and not MPI.Is_finalized():
                comm.Free()
            setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


def _first_difference(a, b, path: str = "") -> str:
    """Human-readable path and values of the first difference between two JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path or 'value'}: {len(a)} entries against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'value'}: {a!r} against {b!r}"
