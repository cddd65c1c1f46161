"""Asynchronous EASGD and EAMSGD (Zhang, Choromanska, LeCun, NeurIPS 2015): the center on server ranks.

Asynchronous EASGD [``easgd-async``] (ALGORITHMS.md §3.1, the async box;
mpiT's ``optim-eamsgd.lua`` with mom = 0). Worker i keeps its own model x^i;
every ``period`` (tau) local steps it exchanges with the servers, which hold
the center x~ (sliced over them, :mod:`mpisgd.masterworker.center`):

    read x~                       (a REQUEST to each server; its REPLY is its slice)
    d    = alpha (x^i - x~)       (alpha = beta / p, from the x^i before the pull)
    send d                        (an UPDATE to each server: x~ <- x~ + d, in arrival order, no lock)
    x^i <- x^i - d

Nothing waits for the other workers: a server answers each REQUEST with its
slice as it is and adds each UPDATE as it comes (another worker's update may
land between a worker's read and its own update, as in mpiT). The exchange
conserves x^i + x~ exactly: what the worker gives up the server adds, so
sum_i x^i + x~ changes only by the local steps.

Two orders (``overlap``):

- ``overlap=False`` (default, the paper's order: the pull comes before the
  gradient). The caller's gradient is computed before any hook runs, so the
  exchange of step t (t = tau, 2 tau, ...) is done at the end of step t - 1
  (in ``after_step()``, after the local step): the gradient of step t is then
  taken at the pulled point. The paper's exchange at t = 0 is left out: the
  workers start at the center (``init="broadcast"``).
- ``overlap=True`` (the Lua code's order): on steps t = 0, tau, 2 tau, ...
  ``before_step()`` sends the REQUEST and keeps the pre-step x^i; the reply
  travels during the local step; ``after_step()`` computes d from the kept
  x^i, sends it and pulls. The gradient is taken at the pre-pull point.

EAMSGD [``eamsgd-async``] adds Nesterov momentum delta (``local_momentum``,
default 0.99) to the local variable, the elastic force staying outside the
momentum (§3.1 EAMSGD box): ``v <- delta v; g = grad F(x + v); x <- x + v - lr g;
v <- v - lr g``. It wraps a *plain* SGD step and leaves the look-ahead point
x + delta v in the parameters (:class:`mpisgd.lookahead.LookAheadMomentum`,
shared with the synchronous ``eamsgd``): after each step the momentum buffer
follows the step (``stepped()``), the elastic exchange (if due) pulls the
parameters, then ``look_ahead()``. With delta = 0 every operation is the
async EASGD one, bit for bit.

A server rank calls ``serve()`` instead of training (with torch:
``opt.algorithm.serve()``); every rank calls ``finish()``, after which it
holds the center.

Example (``mpiexec -n 3 python -m mpi4py example.py``: rank 0 serves, the others minimize |x - 1|^2 / 2)::

    import numpy
    from mpi4py import MPI
    from mpisgd.masterworker import AsyncElasticAveraging

    x = numpy.zeros(4)
    easgd = AsyncElasticAveraging(x, comm=MPI.COMM_WORLD, period=2)
    if easgd.is_server:
        easgd.serve()               # until every worker has left
    else:
        for step in range(200):
            g = x - 1.0             # the gradient, then the local step between the hooks
            easgd.before_step()
            x -= 0.1 * g
            easgd.after_step()
    easgd.finish()                  # every rank now holds the center
    print(MPI.COMM_WORLD.rank, x.round(3))
    easgd.close()
"""

import numpy as np

from ..algorithm import Option, register
from ..comm import tags
from ..lookahead import LOCAL_MOMENTUM, LocalVariable, LookAheadMomentum
from .center import CenterVariable


@register
class AsyncElasticAveraging(LocalVariable, CenterVariable):
    name = "easgd-async"
    summary = "asynchronous EASGD: the center on server ranks, workers exchanging every period steps"
    options = {
        **CenterVariable.options,
        "overlap": Option(False, "the Lua code's order: read the center during the local step and pull "
                                 "after it (default: the paper's order, the pull before the next gradient)"),
    }

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        super().__init__(flat, comm=comm, init=init, **options)
        self.asked = False  # overlap: this step's REQUESTs are out, the pull comes in after_step()
        if not self.is_server:
            self.pre = np.empty_like(self.read)  # overlap: the pre-step x^i

    # -- worker: the hooks ------------------------------------------------------
    def before_step(self) -> None:
        if self.overlap and not self.is_server and not self.silent and self.steps % self.period == 0:
            self.capture(self.pre)
            self.ask()
            self.asked = True

    def after_step(self) -> None:
        if not self.is_server:
            self.stepped()
            if self.asked:
                self.asked = False
                self.pull(self.pre)
            elif not self.overlap and not self.silent and (self.steps + 1) % self.period == 0:
                self.exchange(self.model_to_host())
            self.look_ahead()
        super().after_step()

    # -- worker: the exchange ----------------------------------------------------
    def exchange(self, reference) -> None:
        """One elastic exchange, d computed from ``reference`` (x^i on the host)."""
        self.ask()
        self.pull(reference)

    def ask(self) -> None:
        """A REQUEST for x~ to every server (the replies are taken by :meth:`pull`)."""
        for server in self.server_ranks:
            self.endpoint.send(server, tags.REQUEST)

    def pull(self, reference) -> None:
        """Take the replies (x~), send d = alpha (reference - x~) to the servers, x^i <- x^i - d."""
        for server in self.server_ranks:
            part = self.slice_of(server)
            self.read[part] = self.endpoint.wait_reply(server).data
        np.subtract(reference, self.read, out=self.delta)
        self.delta *= self.alpha
        for server in self.server_ranks:
            self.endpoint.send(server, tags.UPDATE, self.delta[self.slice_of(server)])
        self.apply_delta()
        self.exchanges += 1

    def capture(self, out) -> None:
        """``out`` <- the worker's variable x^i on the host."""
        self.flat.backend.to_host(self.local_variable(), out)

    # -- server ------------------------------------------------------------------
    def handle(self, message) -> None:
        """REQUEST: reply with this server's slice of x~; UPDATE: x~ <- x~ + d."""
        if message.tag == tags.REQUEST:
            self.endpoint.reply(message.source, self.center)
        elif message.tag == tags.UPDATE:
            self.center += message.data
            self.exchanges += 1


@register
class AsyncElasticMomentum(LookAheadMomentum, AsyncElasticAveraging):
    name = "eamsgd-async"
    summary = "asynchronous EAMSGD: easgd-async with Nesterov momentum delta on each worker (wrap plain SGD)"
    options = {**AsyncElasticAveraging.options, "local_momentum": LOCAL_MOMENTUM}
    worker_state = LookAheadMomentum.LOOK_AHEAD_STATE

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        super().__init__(flat, comm=comm, init=init, **options)
        if not self.is_server:
            self.start_look_ahead()
