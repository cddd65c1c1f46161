"""EASGD with dynamic weighting against failed workers [``easgd-dw``] (after Xu and Carr, arXiv:2409.09242).

The paper combines EASGD with a *dynamic weighting strategy* so that
workers that fail or straggle do not hold back or bias the center. Its rule
was not found (ALGORITHMS.md §4.1); what is implemented is the
**[reconstructed]** placeholder of ALGORITHMS.md §4.2, kept in ONE function,
:func:`dynamic_weights`, so that a reader of the paper can swap it.

The exchange is synchronous EASGD's (§3.1), run by a server with a deadline.
Period k (every ``period`` local steps, starting with the first):

- **Worker i**: sends its pre-step x^i (a REQUEST to each server, its slice,
  labelled with the period it belongs to), takes its local step, then waits
  for the reply x~_k and pulls: ``x^i <- x^i - alpha (x^i_pre - x~_k)``.
- **Server**: holds the replies until every alive worker has reported for
  period k, or until ``deadline`` seconds after the period's first report
  (checked in the server's ``idle()``); then it answers each waiting worker
  with x~_k and updates, with weights w_i from :func:`dynamic_weights`,

      x~_{k+1} = x~_k + alpha sum_i w_i (x^i - x~_k)          (alpha = beta / p)

A worker whose report arrives after its period was closed is *late*: its
staleness s_i (periods) makes its weight decay as gamma^{s_i}
(``decay``). A worker that did not report in a period has weight 0 in it
(silent workers drop out at once); the weights are renormalized so that
they sum to p_alive, the number of workers not lost. A worker the service
counted lost (silent longer than ``timeout``) that comes back is told to
reset: the server's reply carries a flag and the worker's model becomes
x~ instead of being pulled.

Recording (``record``, :mod:`.base`): besides each report (``request``,
stamped with its period label) and each ``leave``, a server logs each
period it closes (``close``, stamped k), so that a replay knows which
closings the deadline decided.

With no failure every worker reports in every period, every w_i = 1, and
this is synchronous EASGD exactly (:class:`mpisgd.collective.ElasticAveraging`
with the same period and moving rate), up to the rounding of the sums.

``weighting="plain"`` (:func:`plain_weights`) is the w_i = 1 special case
taken literally, as a server that keeps each worker's last report would do:
a silent worker's frozen x^i keeps weight 1 and pulls the center toward it
(ALGORITHMS.md §4.4; the comparison that shows why weighting is needed).

Dynamic weighting does not depend on the local optimizer (SGD, AdaHessian, ...).
"""

import time

import numpy as np

from ..algorithm import Option, fraction, one_of, positive, register
from ..comm import tags
from ..errors import UsageError
from .center import CenterVariable


def dynamic_weights(staleness: dict, fresh: set, alive: int, decay: float) -> dict:
    """The weights w_i of one center update. [reconstructed: ALGORITHMS.md §4.2, not the paper's rule]

    ``staleness``: worker -> s_i, the periods between the one its last report
    was made for and the one being closed (0: on time); ``fresh``: the workers
    whose report arrived during this period; ``alive``: p_alive. A worker
    that did not report this period weighs 0; the others weigh gamma^{s_i}
    (``decay``), scaled so that the weights sum to p_alive.
    """
    raw = {worker: decay ** s for worker, s in staleness.items() if worker in fresh}
    total = sum(raw.values())
    return {worker: alive * value / total for worker, value in raw.items()} if total > 0 else {}


def plain_weights(staleness: dict, fresh: set, alive: int, decay: float) -> dict:
    """w_i = 1 for every worker's last report, fresh or not (a frozen worker keeps pulling)."""
    return {worker: 1.0 for worker in staleness}


RULES = {"dynamic": dynamic_weights, "plain": plain_weights}


@register
class DynamicWeighting(CenterVariable):
    name = "easgd-dw"
    summary = "EASGD with a deadline and dynamic weights against failed workers [reconstructed rule]"
    options = {
        **CenterVariable.options,
        "deadline": Option(1.0, "seconds a server waits, after a period's first report, for the other "
                                "workers' reports", positive),
        "decay": Option(0.5, "gamma: a report s periods late weighs gamma^s [reconstructed]", fraction),
        "weighting": Option("dynamic", "dynamic (the reconstructed rule) or plain (w_i = 1, a silent "
                                       "worker's last report included)", one_of(*RULES)),
    }
    header_size = 2  # a report: its period; a reply: the period expected next, the reset flag
    server_state = ("center", "period_index", "last")
    worker_state = ("label",)

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        super().__init__(flat, comm=comm, init=init, **options)
        self.comm.check_all(self.deadline < self.timeout, f"deadline={self.deadline:g} s must be shorter than "
                                                          f"timeout={self.timeout:g} s", UsageError)
        self.late = self.resets = self.by_deadline = 0
        if self.is_server:
            self.period_index = 0  # k, the period being collected
            self.last = {}  # worker -> (its last reported slice of x^i, the period it was made for)
            self.fresh = set()  # workers whose report arrived in this period
            self.held = []  # workers waiting for this period's reply
            self.opened = None  # when this period's first report arrived
        else:
            self.label = {server: 0 for server in self.server_ranks}  # the period each server expects next
            self.pre = np.empty_like(self.read)  # the pre-step x^i
            self.asked = False

    # -- worker ------------------------------------------------------------------
    def before_step(self) -> None:
        if not self.is_server and not self.silent and self.steps % self.period == 0:
            self.flat.backend.to_host(self.flat.params, self.pre)
            for server in self.server_ranks:
                self.endpoint.send(server, tags.REQUEST, self.pre[self.slice_of(server)], [self.label[server]])
            self.asked = True

    def after_step(self) -> None:
        if self.asked:
            self.asked = False
            resets = []
            for server in self.server_ranks:
                part, reply = self.slice_of(server), self.endpoint.wait_reply(server)
                self.label[server], reset = int(reply.header[0]), bool(reply.header[1])
                self.read[part] = reply.data
                self.delta[part] = 0.0 if reset else self.alpha * (self.pre[part] - reply.data)
                if reset:
                    resets.append(part)
            self.apply_delta()
            if resets:  # back from being lost: start again from the center
                host = self.model_to_host()
                for part in resets:
                    host[part] = self.read[part]
                self.host_to_model()
                self.resets += 1
            self.exchanges += 1
        super().after_step()

    # -- server ------------------------------------------------------------------
    def handle(self, message) -> None:
        worker = message.source
        if message.tag != tags.REQUEST:
            return
        if worker in self.endpoint.returned:  # lost, now back: reset it to the center, drop its report
            self.endpoint.returned.discard(worker)
            self.last.pop(worker, None)
            self.resets += 1
            self.endpoint.reply(worker, self.center, [self.period_index, 1.0])
            return
        label = int(message.header[0])
        self.late += label < self.period_index
        self.last[worker] = (message.data.copy(), label)
        self.fresh.add(worker)
        self.held.append(worker)
        self.opened = self.opened or time.perf_counter()
        self.close_period()

    def idle(self) -> bool:
        return self.close_period()

    def close_period(self) -> bool:
        """Close period k when every alive worker has reported or the deadline passed; True if closed."""
        if not self.held:
            return False
        missing = self.endpoint.active - self.fresh
        if missing and time.perf_counter() - self.opened < self.deadline:
            return False
        self.by_deadline += bool(missing)
        k = self.period_index
        self.log("close", -1, k)  # when recording: the deadline's timing, for a replay
        for worker in self.held:  # x~_k, before this period's update
            self.endpoint.reply(worker, self.center, [k + 1, 0.0])
        staleness = {w: k - label for w, (_, label) in self.last.items() if w not in self.endpoint.left}
        weights = RULES[self.weighting](staleness, self.fresh, len(self.endpoint.active), self.decay)
        pull = np.zeros_like(self.center)
        for worker in sorted(weights):
            pull += weights[worker] * (self.last[worker][0] - self.center)
        self.center += self.alpha * pull
        self.exchanges += len(weights)
        self.period_index, self.fresh, self.held, self.opened = k + 1, set(), [], None
        return True

    def worker_steps(self) -> float:
        """Every closed period is ``period`` local steps of each worker that kept up."""
        return self.period_index * self.period

    def statistics(self) -> dict:
        """Adds ``resets`` (times reset to the center) and, on a server, ``periods``, ``closed_by_deadline``
        and ``late`` (reports that arrived after their period was closed)."""
        stats = {"resets": self.resets}
        if self.is_server:
            stats.update({"periods": self.period_index, "closed_by_deadline": self.by_deadline, "late": self.late})
        return {**super().statistics(), **stats}
