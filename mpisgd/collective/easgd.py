"""Synchronous EASGD and EAMSGD, elastic averaging SGD (Zhang, Choromanska, LeCun, NeurIPS 2015).

EASGD [``easgd``] (ALGORITHMS.md §3.1; the LSGD repository's implementation
of the paper's Eqs. 5-6). Every rank keeps its own model ``x_i`` and an
identical replica of the center ``z`` (it starts as the mean of the initial
models). On exchange steps (every ``period`` steps, starting with the
first) both forces use the *pre-step* models:

    x_i <- x_i - lr g_i - alpha (x_i - z)
    z   <- z + alpha sum_i (x_i - z)  =  (1 - beta) z + beta mean_i x_i

with ``beta = moving_rate`` and ``alpha = beta / p``. Other steps are plain
local steps. The elastic terms cancel: ``sum_i x_i + z`` changes only by
``-lr sum_i g_i``. The paper's local step is plain SGD (the harness's
``--momentum`` defaults to 0 for ``easgd``; momentum is an explicit choice).

EAMSGD [``eamsgd``] (§3.1 EAMSGD box, synchronous exchange): Nesterov
momentum delta (``local_momentum``, default 0.99) on each rank's variable,
the elastic force outside the momentum:

    v_i <- delta v_i - lr g_i(x_i + delta v_i)
    x_i <- x_i + v_i - alpha (x_i - z)          (the pull on exchange steps only)
    z   <- (1 - beta) z + beta mean_i x_i       (x_i, z before the step)

It wraps a *plain* SGD step and leaves the look-ahead point x_i + delta v_i
in the parameters (:class:`mpisgd.lookahead.LookAheadMomentum`). With
delta = 0 it is ``easgd`` bit for bit.

MPI pattern: on an exchange step ``before_step()`` copies the pre-step
variable x_i and starts an ``Iallreduce`` of it (:meth:`start_exchange`,
the one method that communicates), which runs during the local optimizer
step; ``after_step()`` waits and applies both updates. No master: every
rank updates its own replica of the center identically.

``finish()`` copies the center into every rank's parameters: the model
EASGD produces is the center.
"""

from ..algorithm import Algorithm, Option, fraction, positive, register
from ..lookahead import LOCAL_MOMENTUM, LocalVariable, LookAheadMomentum


@register
class ElasticAveraging(LocalVariable, Algorithm):
    name = "easgd"
    summary = "synchronous EASGD: workers and a replicated center pulled together every period steps"
    options = {
        "period": Option(4, "local steps between elastic exchanges (tau)", positive),
        "moving_rate": Option(0.9, "center moving rate beta; each worker moves by alpha = beta / p", fraction),
    }
    state_buffers = ("center",)
    local_momentum_default = 0.0  # the harness's --momentum default: the paper's plain SGD

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        backend, params = self.flat.backend, self.flat.params
        self.center = backend.copy(params)
        self.comm.allreduce(self.center, average=True)  # identical replicas, even from different starts
        self.before = backend.zeros_like(params)  # this rank's pre-step variable x_i
        self.mean = backend.zeros_like(params)  # mean of the pre-step variables
        self.alpha = self.moving_rate / self.comm.size
        self.exchanging = False  # this step's exchange started in before_step(), not applied yet

    def before_step(self) -> None:
        if self.steps % self.period == 0:
            self.start_exchange()

    def start_exchange(self) -> None:
        """Keep the pre-step x_i and start the all-reduce of its mean (applied in ``after_step()``)."""
        self.before[...] = self.local_variable()
        self.mean[...] = self.before
        self.in_flight.add(self.comm.iallreduce(self.mean, average=True))
        self.exchanging = True

    def after_step(self) -> None:
        self.stepped()
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
        self.look_ahead()
        super().after_step()

    def finish(self) -> None:
        super().finish()
        self.exchanging = False
        self.flat.params[...] = self.center


@register
class ElasticMomentum(LookAheadMomentum, ElasticAveraging):
    name = "eamsgd"
    summary = "synchronous EAMSGD: easgd with Nesterov momentum delta on each worker's variable (wrap plain SGD)"
    options = {**ElasticAveraging.options, "local_momentum": LOCAL_MOMENTUM}
    state_buffers = ElasticAveraging.state_buffers + LookAheadMomentum.LOOK_AHEAD_STATE

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self.start_look_ahead()
