"""Synchronous all-reduce SGD: gradients averaged in buckets, overlapped with backward.

Update (ALGORITHMS.md §1.1): ``g = (1/p) Σ_i g_i``; every rank then applies
the same local optimizer step, so all ranks keep identical parameters.

MPI pattern (§1.2): the flat gradient is cut into buckets of about
``bucket_mb`` MiB, in the reverse order of the parameters (the order in
which backward produces them). A bucket's ``Iallreduce`` starts from a
backward hook as soon as its last gradient is complete; buckets are started
strictly in index order on every rank (a bucket that is ready early waits
for its predecessors), which keeps collective order identical across ranks.
Each new gradient also ``Test()``s the buckets in flight so MPI progresses
them; ``before_step()`` starts what is left and waits for everything.
Each bucket's all-reduce is prepared once (:meth:`Communicator.reduction`),
so a step costs one ``Iallreduce`` and one ``Wait`` per bucket and a little
book-keeping per gradient.

Without hooks (numpy code) call ``before_step()`` after filling the
gradient buffer: it all-reduces every bucket.

Example (numpy, no torch; ``mpiexec -n 2 python -m mpi4py example.py``)::

    import numpy
    from mpi4py import MPI
    from mpisgd import FlatParams
    from mpisgd.collective import BucketedAllReduce

    x, g = numpy.zeros(4), numpy.zeros(4)        # the parameters and their gradient, used in place
    sync = BucketedAllReduce(FlatParams(x, g), comm=MPI.COMM_WORLD)
    g[:] = MPI.COMM_WORLD.rank + 1.0             # this rank's gradient
    sync.before_step()                           # g is now the global mean
    x -= 0.1 * g
    sync.after_step()
    print(MPI.COMM_WORLD.rank, x)                # the same on every rank
    sync.close()
"""

from ..algorithm import Algorithm, Option, positive, register


@register
class BucketedAllReduce(Algorithm):
    name = "sync"
    summary = "synchronous all-reduce SGD (gradients averaged in buckets every step)"
    averages_gradients = True
    options = {
        "bucket_mb": Option(1.0, "gradient bucket size in MiB (one Iallreduce per bucket)", positive),
    }

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self._plan_buckets()
        grads = self.flat.grads  # each bucket's mean, prepared once: a step costs one Iallreduce per bucket
        self._reductions = [self.comm.reduction(grads[lo:hi], average=True) for lo, hi in self.buckets]
        self._reset()

    def _plan_buckets(self) -> None:
        """Group parameters, last first, into contiguous ranges of about bucket_mb MiB."""
        itemsize = self.flat.params.nbytes // max(self.flat.numel, 1)
        limit = max(1, int(self.bucket_mb * 2**20) // max(itemsize, 1))
        self.buckets = []  # (lo, hi) offsets into the flat gradient
        self._bucket_of = [0] * len(self.flat.slots)
        self._expected = []  # gradients per bucket
        lo = hi = None
        members = 0
        for index in reversed(range(len(self.flat.slots))):
            slot = self.flat.slots[index]
            if hi is None:
                lo, hi = slot.offset, slot.offset + slot.numel
            else:
                lo = slot.offset
            self._bucket_of[index] = len(self.buckets)
            members += 1
            if hi - lo >= limit or index == 0:
                self.buckets.append((lo, hi))
                self._expected.append(members)
                lo = hi = None
                members = 0

    def _reset(self) -> None:
        self._missing = self._expected.copy()  # gradients each bucket still waits for
        self._next = 0  # the next bucket to start
        self._averaged = False  # every bucket averaged (backward_done) and not yet stepped

    def _launch(self, everything: bool = False) -> None:
        """Start the buckets that are complete (all of them: ``everything``), strictly in order."""
        missing, count = self._missing, len(self._reductions)
        while self._next < count and (everything or missing[self._next] <= 0):
            self.in_flight.add(self._reductions[self._next].start())
            self._next += 1

    def grad_ready(self, index: int) -> None:
        bucket = self._bucket_of[index]
        if bucket < self._next:
            raise RuntimeError(
                f"gradient of {self.flat.slots[index].name} changed after its bucket was sent: "
                "call step() after each backward() (gradient accumulation is not supported by 'sync')"
            )
        self._missing[bucket] -= 1
        self.progress()
        if bucket == self._next and not self._missing[bucket]:
            self._launch()

    def backward_done(self) -> None:
        """End of backward (torch binding): the averages complete now, so that between
        ``backward()`` and ``step()`` the gradients are the global mean (gradient clipping and
        ``GradScaler`` see the averaged values, never a buffer MPI is still writing)."""
        self._launch(everything=True)
        self.wait_in_flight()
        self._averaged = True

    def before_step(self) -> None:
        if not self._averaged:
            self.backward_done()
        self._reset()

    def finish(self) -> None:
        super().finish()
        self._reset()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "buckets": [list(b) for b in self.buckets]}
