"""Local SGD (periodic model averaging): local steps, then ``x_i <- mean_j x_j`` every period.

Update (ALGORITHMS.md §1.1): each rank takes ``period`` (τ) local optimizer
steps, then all ranks replace their parameters by the average. Local
optimizer state (momentum) is kept, not averaged.

MPI pattern: one blocking ``Allreduce`` of the flat parameter vector every
``period`` steps. ``finish()`` averages once more if steps were taken since
the last average, so every rank ends with the same model.

Property: with ``period=1`` and plain SGD this is synchronous SGD exactly
(the average of ``x - lr g_i`` is ``x - lr mean(g)``).

Example (numpy; ``mpiexec -n 2 python -m mpi4py example.py``)::

    import numpy
    from mpi4py import MPI
    from mpisgd import FlatParams
    from mpisgd.collective import PeriodicAveraging

    comm = MPI.COMM_WORLD
    target = numpy.full(3, float(comm.rank))     # rank r minimizes |x - target_r|^2 / 2
    x = numpy.zeros(3)
    local = PeriodicAveraging(FlatParams(x), comm=comm, period=4)
    for step in range(100):
        x -= 0.1 * (x - target)                  # a local gradient step
        local.after_step()
    local.finish()
    print(comm.rank, x)                          # every rank: the mean of the targets
    local.close()
"""

from ..algorithm import Algorithm, Option, positive, register


@register
class PeriodicAveraging(Algorithm):
    name = "local"
    summary = "Local SGD: local steps, parameters averaged every period steps"
    options = {"period": Option(4, "local steps between model averages (tau)", positive)}
    state_fields = ("averaged_at",)

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self.averaged_at = 0

    def after_step(self) -> None:
        super().after_step()
        if self.steps % self.period == 0:
            self.average()

    def average(self) -> None:
        self.comm.allreduce(self.flat.params, average=True)
        self.averaged_at = self.steps

    def finish(self) -> None:
        if self.averaged_at != self.steps:
            self.average()
