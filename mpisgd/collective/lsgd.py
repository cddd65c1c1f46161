"""Leader SGD, single and multi-leader (Teng et al., NeurIPS 2019).

Update (ALGORITHMS.md §5; poster and official code): every rank keeps a
running mean of its last ``loss_window`` training losses (reported with
``report_loss``). Every ``period`` steps the ranks of a group agree on the
group's leader (lowest running loss, ties to the lowest rank, via one
all-gather of one number), the leader's parameters are broadcast and every
rank is pulled toward them:

    x_i <- x_i - pull (x_i - x_leader)          (the leader itself is unchanged)

Every ``global_period`` steps the same happens over all ranks with
``global_pull``. Groups are the node-local ranks (``group_size=0``) or
blocks of ``group_size`` consecutive ranks, to emulate nodes on one
machine. One group (e.g. one node, or ``pull=0``) is single-leader LSGD.
When both fire on the same step the local pull comes first.

MPI pattern: ``Allgather`` of one float and ``Bcast`` of the model on the
group's communicator (every ``period`` steps) and on the world's (every
``global_period`` steps): one broadcast instead of an all-reduce of all
models. The repository's extra per-step proximal pull is not implemented.

Defaults: ``pull = global_pull = 0.1`` (the reference's c1, c2) and
``global_period = 4``, ``period = global_period / 4 = 1``: the smallest
global period of the reference's sweep {4, 16, 64}, with its rule
``l_comm = g_comm / 4``.

``finish()`` pulls every rank fully onto the global leader (a broadcast),
so every rank ends with the leader's model.
"""

import collections
import math

import numpy as np

from ..algorithm import Algorithm, Option, fraction, non_negative, positive, register


@register
class LeaderSGD(Algorithm):
    name = "lsgd"
    summary = "Leader SGD: ranks pulled toward the lowest-loss rank of their group and of all ranks"
    options = {
        "period": Option(1, "local steps between pulls toward the group leader (tau)", positive),
        "global_period": Option(4, "local steps between pulls toward the global leader (tau_G)", positive),
        "pull": Option(0.1, "pulling strength toward the group leader (lambda, c1)", fraction),
        "global_pull": Option(0.1, "pulling strength toward the global leader (lambda_G, c2)", fraction),
        "group_size": Option(0, "ranks per group (0: the ranks of one node)", non_negative),
        "loss_window": Option(0, "training losses in the running mean that picks the leader (0: period)",
                              non_negative),
    }
    state_fields = ("losses", "leaders")

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        if self.group_size:
            self.group = self.comm.split(self.comm.rank // self.group_size)
        else:
            self.group = self.comm.node_communicator()
        self.losses = collections.deque(maxlen=self.loss_window or self.period)
        self.leader = self.flat.backend.zeros_like(self.flat.params)
        self.leaders = {"group": None, "global": None}  # the latest leaders (ranks in each communicator)

    def report_loss(self, loss: float) -> None:
        self.losses.append(loss)

    def running_loss(self) -> float:
        value = sum(self.losses) / len(self.losses) if self.losses else math.inf
        return math.inf if math.isnan(value) else value

    def elect(self, comm) -> int:
        """The rank (in ``comm``) with the lowest running loss; ties go to the lowest rank."""
        losses = comm.allgather(np.array([self.running_loss()]))[:, 0]
        return int(np.argmin(losses))

    def pull_toward_leader(self, comm, strength: float) -> int:
        leader = self.elect(comm)
        self.leader[...] = self.flat.params
        comm.bcast(self.leader, root=leader)
        if comm.rank == leader:
            return leader  # the leader is invariant under its own pull
        if strength == 1.0:
            self.flat.params[...] = self.leader
        else:
            self.leader -= self.flat.params
            self.flat.backend.scale(self.leader, strength)
            self.flat.params += self.leader
        return leader

    def after_step(self) -> None:
        super().after_step()
        if self.steps % self.period == 0 and self.pull > 0 and self.group.size > 1:
            self.leaders["group"] = self.pull_toward_leader(self.group, self.pull)
        if self.steps % self.global_period == 0 and self.global_pull > 0 and self.comm.size > 1:
            self.leaders["global"] = self.pull_toward_leader(self.comm, self.global_pull)

    def finish(self) -> None:
        if self.comm.size > 1:
            self.leaders["global"] = self.pull_toward_leader(self.comm, 1.0)

    def statistics(self) -> dict:
        return {**super().statistics(), "group_leader": self.leaders["group"],
                "global_leader": self.leaders["global"]}

    def close(self) -> None:
        self.group.free()
        super().close()
