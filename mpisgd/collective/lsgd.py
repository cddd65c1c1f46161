"""Leader SGD, single and multi-leader (Teng et al., NeurIPS 2019).

Update (ALGORITHMS.md §5.1, the poster's per-worker step): rank ``i`` of
group ``j`` takes its local step and, on pulling steps, is pulled toward
its group's leader ``x~_j`` (strength ``pull``, lambda) and toward the
global leader ``x~`` (``global_pull``, lambda_G) *at once*, both pulls
computed from the pre-step models of step ``t``:

    x_i <- x_i - lr g_i  - lambda (x_i,t - x~_j,t) - lambda_G (x_i,t - x~_t)

The group pull is due every ``period`` steps (tau), the global pull every
``global_period`` steps (tau_G); a term that is not due is left out. A
leader is the rank with the lowest loss of the current step (the loss
``report_loss`` gives for the step just taken, i.e. at ``x_i,t``; with
``loss_window`` k > 1 the mean of the last k), ties to the lowest rank, a
NaN loss counting as +inf; every rank learns every loss (``Allgather`` of
one float), so all agree. The leaders are unchanged by their own pulls.

Groups: ``group_size=0`` (default) puts all ranks in one group:
single-leader LSGD. The group leader then *is* the global leader and the
two terms add up: ``x_i <- x_i - lr g_i - s (x_i,t - x~_t)`` with
``s = lambda [t % tau == 0] + lambda_G [t % tau_G == 0]`` (the poster's
objective with n = 1 groups), sent as one broadcast. ``group_size=k``
makes blocks of k consecutive ranks (multi-leader), ``group_size=-1`` the
ranks of one node. ``pull + global_pull`` may not exceed 1, so that the
pulled model is a convex combination of the model and the leaders.

The pulls of step t wait for step t's loss: they run in ``after_step()``
when the loss was reported before it (flat-vector loops), otherwise in
``report_loss()`` right after (the torch binding and ``mpisgd train``
report after ``step()``). Report one loss per step; a pull still waiting
when the next step begins runs then, with the losses known (+inf without
any: rank 0 leads). ``before_step()`` must precede each local step (it
keeps the pre-step model of pulling steps).

MPI pattern: ``Allgather`` of one float and ``Bcast`` of the leader's
pre-step model, on the group's communicator and on the world's: one
broadcast instead of an all-reduce of all models. The reference
repository's extra per-step proximal pull (not on the poster) is not
implemented.

Defaults: ``pull = global_pull = 0.1`` (the reference's c1, c2),
``global_period = 4`` and ``period = global_period / 4 = 1`` (the smallest
of the reference's sweep {4, 16, 64} and its rule ``l_comm = g_comm / 4``).

``finish()`` moves every rank onto the global leader's model (a
broadcast), so every rank ends with the leader's model.
"""

import collections
import math

import numpy as np

from ..algorithm import Algorithm, Option, fraction, non_negative, positive, register
from ..errors import UsageError


def node_or_more(value):
    return None if value >= -1 else "must be -1 (one group per node), 0 (one group) or a group size"


@register
class LeaderSGD(Algorithm):
    name = "lsgd"
    summary = "Leader SGD: ranks pulled toward the lowest-loss rank of all ranks (and of their group)"
    options = {
        "period": Option(1, "local steps between pulls toward the group leader (tau)", positive),
        "global_period": Option(4, "local steps between pulls toward the global leader (tau_G)", positive),
        "pull": Option(0.1, "pulling strength toward the group leader (lambda, c1)", fraction),
        "global_pull": Option(0.1, "pulling strength toward the global leader (lambda_G, c2)", fraction),
        "group_size": Option(0, "ranks per group: 0 all (one leader), k blocks of k ranks (multi-leader), "
                                "-1 the ranks of one node", node_or_more),
        "loss_window": Option(1, "losses whose mean picks the leader, the current step's last (0: period)",
                              non_negative),
    }
    state_buffers = ("before",)
    state_fields = ("losses", "leaders", "reported", "due", "kept")

    @classmethod
    def resolve_options(cls, given: dict) -> dict:
        config = super().resolve_options(given)
        if config["pull"] + config["global_pull"] > 1:
            raise UsageError(f"options pull + global_pull must not exceed 1, got "
                             f"{config['pull']} + {config['global_pull']}")
        return config

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        if self.group_size == -1:
            self.group = self.comm.node_communicator()
        else:
            self.group = self.comm.split(self.comm.rank // self.group_size if self.group_size else 0)
        self.single = self.group.size == self.comm.size  # one group: the group leader is the global one
        self.losses = collections.deque(maxlen=self.loss_window or self.period)
        self.reported = 0  # losses reported so far (the loss of step t is the t-th)
        self.due = 0  # the step whose pulls wait for its loss (0: none)
        self.before = self.flat.backend.zeros_like(self.flat.params)  # x_i,t of a pulling step
        self.kept = 0  # the step whose pre-step model ``before`` holds
        self.leader = self.flat.backend.zeros_like(self.flat.params)  # a leader's x~_t, received
        self.leaders = {"group": None, "global": None}  # the latest leaders (ranks in each communicator)

    # -- schedule ----------------------------------------------------------
    def pulls_at(self, step: int):
        """(group pull due, global pull due) at ``step``, leaving out pulls that cannot move anything."""
        local = step % self.period == 0 and self.pull > 0 and self.group.size > 1
        world = step % self.global_period == 0 and self.global_pull > 0 and self.comm.size > 1
        return local, world

    def before_step(self) -> None:
        self.run_due()  # the previous step's loss never came
        if any(self.pulls_at(self.steps + 1)):
            self.before[...] = self.flat.params
            self.kept = self.steps + 1

    def after_step(self) -> None:
        self.run_due()
        super().after_step()
        if any(self.pulls_at(self.steps)):
            if self.kept != self.steps:
                raise UsageError("lsgd pulls from the pre-step models: call before_step() before each local step")
            self.due = self.steps
            if self.reported >= self.steps:
                self.run_due()

    def report_loss(self, loss: float) -> None:
        self.losses.append(loss)
        self.reported += 1
        if self.due and self.reported >= self.due:
            self.run_due()

    def run_due(self) -> None:
        """Apply the pulls waiting for their step's loss, if any."""
        if self.due:
            step, self.due = self.due, 0
            self.pull_toward_leaders(*self.pulls_at(step))

    # -- leaders and pulls -------------------------------------------------
    def running_loss(self) -> float:
        value = sum(self.losses) / len(self.losses) if self.losses else math.inf
        return math.inf if math.isnan(value) else value

    def elect(self, comm) -> int:
        """The rank (in ``comm``) with the lowest running loss; ties go to the lowest rank."""
        losses = comm.allgather(np.array([self.running_loss()]))[:, 0]
        return int(np.argmin(losses))

    def pull_toward_leaders(self, local: bool, world: bool) -> None:
        """Both pulls of one step, from the pre-step models in ``before``: x += s (x~_t - x_t) per leader."""
        if self.single:
            self.leaders["group"] = self.leaders["global"] = self.pull_toward(
                self.comm, self.pull * local + self.global_pull * world)
            return
        if local:
            self.leaders["group"] = self.pull_toward(self.group, self.pull)
        if world:
            self.leaders["global"] = self.pull_toward(self.comm, self.global_pull)

    def pull_toward(self, comm, strength: float) -> int:
        """Elect ``comm``'s leader, receive its pre-step model, add ``strength (x~_t - x_t)``."""
        leader = self.elect(comm)
        self.leader[...] = self.before
        comm.bcast(self.leader, root=leader)
        if comm.rank != leader:  # the leader is invariant under its own pull
            self.leader -= self.before
            self.flat.backend.scale(self.leader, strength)
            self.flat.params += self.leader
        return leader

    def finish(self) -> None:
        # a waiting pull is dropped: it cannot move the global leader, whose model every rank now takes
        self.due = 0
        if self.comm.size > 1:
            leader = self.elect(self.comm)
            self.comm.bcast(self.flat.params, root=leader)
            self.leaders["global"] = leader

    def statistics(self) -> dict:
        return {**super().statistics(), "group_leader": self.leaders["group"],
                "global_leader": self.leaders["global"]}

    def close(self) -> None:
        self.group.free()
        super().close()
