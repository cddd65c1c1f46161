"""A vector shared by the ranks of one node: an MPI shared-memory window with a numpy view on every rank.

``MPI.Win.Allocate_shared`` on the node-local communicator
(``COMM_TYPE_SHARED``): rank 0 of the node allocates the whole vector, the
others 0 bytes, and every rank maps rank 0's segment (``Shared_query(0)``)
as a numpy array, :attr:`SharedWindow.array`. Plain loads and stores
through it are ordinary memory accesses of the same physical pages.

Updates and reads, in two flavours:

- **raw** (:meth:`add`, :meth:`read` with ``atomic=False``): an in-place
  numpy ``+=`` on the view and a copy of it. Concurrent raw updates race
  (Hogwild): two read-modify-writes of one element can lose one of them.
- **atomic**: ``Accumulate(op=SUM)`` and ``Get_accumulate(op=NO_OP)`` on
  rank 0's segment, then ``Flush(0)``. MPI makes these element-wise atomic
  with respect to each other (same basic datatype, ALGORITHMS.md §0.3
  rule 5), never with respect to raw stores; do not mix the flavours on one
  element while others update it. :meth:`fetch_add` (``Fetch_and_op``) is
  the atomic counter.

Memory model: the window stays in ONE passive-target epoch from
construction to :meth:`free` (``Lock_all`` with ``MODE_NOCHECK``, each
atomic call completed by ``Flush``); this was faster here than a
``Lock``/``Unlock`` pair per update (docs/architecture.md gives the
numbers). Shared-memory windows use MPI's *unified* model (public and
private copy are the same memory), in which ``Win_sync`` is the memory
barrier that orders this rank's loads and stores against the other ranks':
:meth:`sync` is ``Win_sync``, and :meth:`fence` (flush, sync, barrier, sync)
makes every update made before it visible to every rank after it.

A run whose ranks are on several nodes cannot share memory: construction
then raises :class:`~mpisgd.errors.UsageError` on every rank.

Example (``mpiexec -n 2 python -m mpi4py x.py``)::

    from mpi4py import MPI
    from mpisgd.comm import Communicator
    from mpisgd.comm.window import SharedWindow

    comm = Communicator(MPI.COMM_WORLD)
    window = SharedWindow(comm, 4)          # zeros, shared by both ranks
    window.add([1.0, 2.0, 3.0, 4.0], atomic=True)
    window.fence()
    print(comm.rank, window.read())         # [2. 4. 6. 8.] on both ranks
    window.free()
    comm.free()
"""

import numpy as np

from ..errors import UsageError
from .backoff import Backoff
from .mpi import MPI

POLL_S = 1e-3  # longest sleep between two polls of a request (the ranks are in step: answers come soon)


def wait_polled(request) -> None:
    """Complete an MPI request by polling it with back-off sleeps: MPICH's blocking calls spin on a
    core that a peer still computing may need (more ranks than cores)."""
    backoff = Backoff(longest=POLL_S)
    while not request.Test():
        backoff.idle()


class SharedWindow:
    """``size`` elements of ``dtype`` in one node's shared memory, seen by every rank of ``comm``.

    ``comm`` is a :class:`~mpisgd.comm.Communicator`; its node communicator
    (``COMM_TYPE_SHARED``, the ranks MPI says share memory) must hold all of
    its ranks. ``initial`` (rank 0's values count) fills the vector; default
    zeros. ``what`` names the user in the error message. Collective over ``comm``.
    """

    def __init__(self, comm, size: int, dtype=np.float64, *, initial=None, what="a shared window"):
        node = comm.node
        local = node.Get_size()
        comm.check_all(local == comm.size,
                       f"{what} needs every rank on one node (shared memory), but only {local} of the {comm.size} "
                       "ranks share this rank's node; run on one node, or use a distributed-memory algorithm",
                       UsageError)
        self.comm, self.dtype, self.size = comm, np.dtype(dtype), int(size)
        itemsize = self.dtype.itemsize
        owner = node.Get_rank() == 0
        self.win = MPI.Win.Allocate_shared(self.size * itemsize if owner else 0, itemsize, comm=node)
        buffer, _ = self.win.Shared_query(0)
        self.array = np.ndarray((self.size,), dtype=self.dtype, buffer=buffer)
        self._ignored = np.zeros(max(self.size, 1), dtype=self.dtype)
        self.win.Lock_all(MPI.MODE_NOCHECK)
        if owner:
            self.array[...] = 0 if initial is None else np.asarray(initial, dtype=self.dtype).reshape(-1)
        self.fence()

    # -- raw access (ordinary loads and stores; racy between ranks) ----------
    def read(self, out=None, *, atomic: bool = False) -> np.ndarray:
        """A copy of the vector (into ``out`` if given). Raw: ``Win_sync`` then a plain copy (each
        element is some value written to it, the vector as a whole may mix old and new elements);
        atomic: ``Get_accumulate(NO_OP)``, element-wise atomic against :meth:`add` with ``atomic=True``."""
        out = np.empty(self.size, dtype=self.dtype) if out is None else out
        if atomic:
            self.win.Get_accumulate(self._ignored, out, 0, op=MPI.NO_OP)  # NO_OP: origin ignored, yet required
            self.win.Flush(0)
        else:
            self.win.Sync()
            np.copyto(out, self.array)
        return out

    def add(self, delta, *, atomic: bool = False) -> None:
        """x += delta. Raw: numpy's in-place add on the view (Hogwild: concurrent adds may lose some);
        atomic: ``Accumulate(SUM)`` completed by ``Flush``, no concurrent atomic add is lost."""
        if atomic:
            self.win.Accumulate(np.ascontiguousarray(delta, dtype=self.dtype), 0, op=MPI.SUM)
            self.win.Flush(0)
        else:
            np.add(self.array, delta, out=self.array)

    def fetch_add(self, value, index: int = 0):
        """Atomically add ``value`` to element ``index``; return the element's value before (``Fetch_and_op``)."""
        origin = np.array([value], dtype=self.dtype)
        result = np.empty(1, dtype=self.dtype)
        self.win.Fetch_and_op(origin, result, 0, target_disp=index, op=MPI.SUM)
        self.win.Flush(0)
        return result[0]

    def load(self, index: int = 0, *, atomic: bool = True):
        """Element ``index``: atomic, ``Fetch_and_op(NO_OP)``; raw, ``Win_sync`` and a plain load (an aligned
        8-byte load sees the old or the new value on common hardware; MPI itself does not promise it)."""
        if not atomic:
            self.win.Sync()
            return self.array[index]
        result = np.empty(1, dtype=self.dtype)
        self.win.Fetch_and_op(self._ignored[:1], result, 0, target_disp=index, op=MPI.NO_OP)
        self.win.Flush(0)
        return result[0]

    # -- ordering --------------------------------------------------------------
    def sync(self) -> None:
        """``Win_sync``: the memory barrier of the unified model (order own loads/stores against others')."""
        self.win.Sync()

    def fence(self) -> None:
        """Collective: every update any rank made before is complete and visible to every rank after."""
        self.win.Flush_all()
        self.win.Sync()
        wait_polled(self.comm.mpi.Ibarrier())
        self.win.Sync()

    def free(self) -> None:
        """End the access epoch and free the window (collective; idempotent)."""
        if self.win is not None:
            self.array = None
            self.win.Unlock_all()
            self.win.Free()
            self.win = None
