"""Synchronous EASGD, elastic averaging SGD (Zhang, Choromanska, LeCun, NeurIPS 2015).

Update (ALGORITHMS.md §3.1; the LSGD repository's implementation of the
paper's Eqs. 5-6). Every rank keeps its own model ``x_i`` and an identical
replica of the center ``z`` (it starts as the mean of the initial models). On exchange steps (every ``period`` steps,
starting with the first) both forces use the *pre-step* models:

    x_i <- x_i - lr g_i - alpha (x_i - z)
    z   <- z + alpha sum_i (x_i - z)  =  (1 - beta) z + beta mean_i x_i

with ``beta = moving_rate`` and ``alpha = beta / p``. Other steps are plain
local steps. The elastic terms cancel: ``sum_i x_i + z`` changes only by
``-lr sum_i g_i``.

MPI pattern: on an exchange step ``before_step()`` copies the pre-step
model and starts an ``Iallreduce`` of it, which runs during the local
optimizer step; ``after_step()`` waits and applies both updates. No master:
every rank updates its own replica of the center identically.

EAMSGD: use a Nesterov-momentum local optimizer (``--nesterov`` on the
command line, ``torch.optim.SGD(..., momentum=0.99, nesterov=True)`` in
Python); the elastic exchange is unchanged.

``finish()`` copies the center into every rank's parameters: the model
EASGD produces is the center.
"""

from ..algorithm import Algorithm, Option, fraction, positive, register


@register
class ElasticAveraging(Algorithm):
    name = "easgd"
    summary = "synchronous EASGD: workers and a replicated center pulled together every period steps"
    options = {
        "period": Option(4, "local steps between elastic exchanges (tau)", positive),
        "moving_rate": Option(0.9, "center moving rate beta; each worker moves by alpha = beta / p", fraction),
    }
    state_buffers = ("center",)

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        backend, params = self.flat.backend, self.flat.params
        self.center = backend.copy(params)
        self.comm.allreduce(self.center, average=True)  # identical replicas, even from different starts
        self.before = backend.zeros_like(params)  # this rank's pre-step model
        self.mean = backend.zeros_like(params)  # mean of the pre-step models
        self.alpha = self.moving_rate / self.comm.size
        self.exchanging = False  # this step's exchange started in before_step(), not applied yet

    def before_step(self) -> None:
        if self.steps % self.period == 0:
            self.before[...] = self.flat.params
            self.mean[...] = self.flat.params
            self.in_flight.add(self.comm.iallreduce(self.mean, average=True))
            self.exchanging = True

    def after_step(self) -> None:
        if self.exchanging:
            self.wait_in_flight()
            self.exchanging = False
            backend = self.flat.backend
            self.before -= self.center  # x_i - z
            backend.scale(self.before, self.alpha)
            self.flat.params -= self.before
            backend.scale(self.center, 1.0 - self.moving_rate)
            backend.scale(self.mean, self.moving_rate)
            self.center += self.mean
        super().after_step()

    def finish(self) -> None:
        super().finish()
        self.exchanging = False
        self.flat.params[...] = self.center
