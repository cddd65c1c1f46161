"""The training loop shared by every algorithm: algorithms plug in, they do not copy it.

``run(config, comm)`` prepares this rank's data and model (:mod:`.prepare`),
wraps a local ``torch.optim.SGD`` in the chosen algorithm and trains: epochs
of local steps (:mod:`.step`), each stretched on a straggler rank
(:mod:`.straggler`), evaluations every ``--eval-every`` epochs
(:mod:`.evaluate`), records and printed lines (:mod:`.records`), all under
the ``--time-budget`` (:mod:`.budget`). The final evaluation, after
``finish()`` (asynchronous algorithms: exit protocol and one average), is
the common model's; just before it, each rank that trains evaluates its own
model on the whole test set: the per-node accuracy (:mod:`.nodes`).
Master-worker algorithms: the server ranks serve instead of training
(rank 0 evaluating the center mid-run, :mod:`.serving`), and the end of
the run is that of the ranks still there (:mod:`.roles`); ``--fail`` makes
workers fail on purpose (:mod:`.failures`).
"""

import logging
import time

import torch

from ..algorithm import params_digest
from ..comm import Communicator, activity
from ..errors import UsageError
from .diagnostics import Diagnostics
from .budget import TimeBudget
from .checkpointing import Checkpointing, Preempted
from .evaluate import Evaluator, test_rows
from .nodes import NodeAccuracy
from .records import Records
from .serving import CenterEvaluation, final_epoch
from .prepare import distributed_optimizer, prepare
from .private_step import PrivateStep
from .step import LocalStep, ShardSampler, steps_per_epoch
from .summary import reached, summarize

log = logging.getLogger(__name__)


def run(config, comm=None, *, throttle=None) -> dict:
    """Train as ``config`` says on ``comm`` (default COMM_WORLD); return the summary on every rank.

    ``throttle`` (Python only), e.g. ``mpisgd.comm.Throttle(bytes_per_second)`` on the ranks whose
    uplink should be slow: plugged into the algorithm's messenger on this rank; an algorithm
    without a messenger is a UsageError on every rank."""
    torch.set_num_threads(config.threads)
    harness = Communicator(comm)  # bookkeeping traffic, kept out of the algorithm's statistics
    diagnostics = Diagnostics(config, harness.rank)  # --trace from here, --stall-timeout once training starts
    try:
        trainer = Trainer(config, harness, comm, throttle)
        diagnostics.watch()
        return trainer.train()
    finally:
        diagnostics.close()
        harness.free()


class Trainer:
    """One run: epochs of steps, evaluations, records; :meth:`train` returns the summary."""

    def __init__(self, config, harness, comm, throttle=None):
        s = prepare(config, harness)
        self.config, self.harness, self.info, self.straggler, self.model = config, harness, s.info, s.straggler, s.model
        self.roles, self.injector, self.ending = s.roles, s.roles.injector, s.roles.ending(harness)
        self.dist = distributed_optimizer(config, s.model, comm, harness, throttle)
        self.asynchronous = self.dist.algorithm.asynchronous
        n_shard = len(s.train[1])
        log.info("device %s, %d training samples in this shard, %d parameters, MPI thread level %d",
                 s.device, n_shard, self.dist.flat.numel, harness.thread_level)
        self.steps_per_epoch = steps_per_epoch(s.info.n_train, s.roles.trainers, config.batch_size)
        sampler = ShardSampler(n_shard, config.batch_size, seed=config.seed * 100003 + harness.rank)
        self.privacy = s.privacy
        if s.privacy is None:
            self.local_step = LocalStep(s.model, self.dist, s.info.task, s.train, sampler)
        else:  # --dp: Poisson batches, per-sample weighted gradients, noise (docs/privacy.md)
            self.local_step = PrivateStep(s.model, self.dist, s.info.task, s.train, s.privacy, ranks=harness.size,
                                          rank=harness.rank)
        self.evaluate = Evaluator(s.model, s.info.task, s.test,
                                  test_rows(s.info.n_test, self.asynchronous, harness.rank, harness.size), harness)
        self.nodes = NodeAccuracy(self.dist.algorithm, not s.roles.serves, harness.rank)
        self.records = Records(config, s.metrics, harness.rank, config.epochs * self.steps_per_epoch)
        start = dict(config=config.public(), n_train=s.info.n_train, n_test=s.info.n_test,
                     params=self.dist.flat.numel, steps_per_epoch=self.steps_per_epoch, device=s.device,
                     asynchronous=self.asynchronous, **s.roles.start_fields(harness))
        self.budget = TimeBudget(config.time_budget)
        self.step, self.last, self.reached_at = 0, None, None
        self.position = {"epoch": 1, "in_epoch": 0, "loss_sum": 0.0, "taken": 0}  # where training stands
        self.checkpoints = Checkpointing(config, harness, self.asynchronous) if config.checkpoint_dir else None
        if config.resume:  # --resume: the latest checkpoint's state, the metrics file cut back to it
            self.position = self.checkpoints.resume(self)
            harness.check_all(self.position["epoch"] <= config.epochs, f"--resume: the checkpoint is in epoch "
                              f"{self.position['epoch']}; --epochs must be at least that", UsageError)
            self.records.resumed(step=self.step, checkpoint=self.checkpoints.number, **start)
        else:
            self.records.start(**start)
        self.ending.attach(self)  # a gossip run's end follows the ranks its algorithm finds alive

    def train(self) -> dict:
        """Train to the end; the summary. A preemption ends it with :class:`Preempted` (checkpoint written)."""
        try:
            summary = self._train()
        except Preempted:
            self.release()
            raise
        self.release()
        return summary

    def _train(self) -> dict:
        config, evaluated_final, resumed = self.config, False, self.position
        if self.roles.serves:  # a master-worker server: answer the workers, then the end of the run
            self.dist.algorithm.serve(between=CenterEvaluation.of(self))  # rank 0: evaluations mid-run
            epoch = final_epoch(self)
            self.finish()
            self.evaluate_epoch(epoch, 0.0, 0, final=True)
            return self.close()
        for epoch in range(resumed["epoch"], config.epochs + 1):
            loss_sum, taken, stopping = self.train_epoch(epoch, resumed if epoch == resumed["epoch"] else None)
            final = stopping or epoch == config.epochs
            if not final and epoch % config.eval_every:
                continue
            if final:
                self.finish()
            over_budget = self.evaluate_epoch(epoch, loss_sum, taken, final)
            evaluated_final = final
            if stopping or over_budget or (config.stop_at_target and self.reached_at is not None):
                break
        if not evaluated_final:  # stopped early at an evaluation: finish, then measure the final model
            self.finish()
            record, _ = self.evaluate(epoch=self.last["epoch"], step=self.step, clock=self.budget,
                                      train_loss=0.0, batches=1.0)  # the same all-reduce as in the loop
            self.last = {**record, "loss": self.last["loss"], **self.nodes.fields}
            self.records.epoch(self.dist, self.last, show=False)
        return self.close()

    def train_epoch(self, epoch: int, resumed: dict = None):
        """The epoch's steps (``resumed``: from a checkpoint's place in it): (training loss sum, steps taken,
        whether the time budget, the privacy budget or a preemption stopped it)."""
        first, loss_sum, taken = (resumed["in_epoch"], resumed["loss_sum"], resumed["taken"]) if resumed \
            else (0, 0.0, 0)
        for in_epoch in range(first, self.steps_per_epoch):
            if self.asynchronous and self.budget.spent():
                return loss_sum, taken, True  # each asynchronous rank stops on its own; finish() gathers them
            if self.privacy is not None and not self.privacy.ledger.allows(self.step + 1):
                self.records.say(self.privacy.stop_message(self.step))  # the same step on every rank but async
                return loss_sum, taken, True
            began = time.perf_counter()
            loss = self.local_step()
            self.step, taken, loss_sum = self.step + 1, taken + 1, loss_sum + loss
            if activity.ON:  # the stall watchdog's clock starts over
                activity.progress(self.step)
            self.straggler.after_step(self.dist, began)
            self.injector.after_step(self, self.step, began)
            self.records.step(self.dist, self.step, epoch, loss, self.budget)
            self.position = {"epoch": epoch, "in_epoch": in_epoch + 1, "loss_sum": loss_sum, "taken": taken}
            if self.checkpoints is not None and self.checkpoints.after_step(self, self.position):
                if not self.asynchronous:
                    self.checkpoints.preempted(self)  # every rank at this step, the checkpoint written
                return loss_sum, taken, True  # asynchronous: stop, finish, then checkpoint (close)
        return loss_sum, taken, False

    def finish(self) -> None:
        """Training is over on this rank: an injected exit or kill not reached yet happens now; the
        algorithm finishes; the ranks still there agree on the end of the run."""
        self.injector.at_end(self)
        self.nodes.measure(self.evaluate)  # each training rank's own model, before the final average
        self.dist.finish()
        self.ending.after_finish(self)
        self.nodes.gather(self.ending.comm)

    def silence(self) -> None:
        """This worker stops sending (``--fail RANK:silent@STEP``) and trains on alone."""
        self.dist.algorithm.silence()

    def evaluate_epoch(self, epoch: int, loss_sum: float, taken: int, final: bool) -> bool:
        """Evaluate and record; True when a rank found the time budget spent (agreed by the all-reduce)."""
        over = not self.asynchronous and self.budget.spent()
        self.last, over = self.evaluate(epoch=epoch, step=self.step, clock=self.budget, train_loss=loss_sum,
                                        batches=taken, flag=over,
                                        collective=final or not self.asynchronous)  # async: no mid-run waits
        if final:
            self.last.update(self.nodes.fields)
        elif self.asynchronous:  # this rank's own model on the whole test set
            self.nodes.midrun(self.last)
        if self.privacy is not None and self.harness.rank == 0:  # the ε of rank 0's steps so far
            self.last["epsilon_spent"] = self.privacy.ledger.epsilon(self.last["step"])
        if self.reached_at is None and reached(self.config, self.last):
            self.reached_at = self.last["wall_s"]
        self.records.epoch(self.dist, self.last)
        if activity.ON:
            activity.progress()
        return over

    def close(self) -> dict:
        if self.checkpoints is not None:  # an asynchronous run stopped by a signal checkpoints here
            self.checkpoints.at_stop(self, self.position, self.ending.comm)
        stats = self.ending.comm.allgather_object(self.dist.statistics())
        summary = summarize(self.config, self.harness.size, self.last, self.budget.elapsed(), self.reached_at, stats)
        summary.update(self.ending.summary(stats, self.steps_per_epoch))
        summary.update(self.nodes.summary_fields())
        if self.privacy is not None:  # ε of the most steps any trainer took, computed once (rank 0)
            most = max(s["steps"] for s in stats)
            spent = self.ending.comm.bcast_object(self.privacy.ledger.epsilon(most) if self.harness.rank == 0 else None)
            summary.update(self.privacy.summary_fields(spent))
        summary["params_digest"] = self.ending.comm.bcast_object(params_digest(self.dist.flat))  # rank 0's
        self.records.summary(summary)
        return summary

    def release(self) -> None:
        """Free the algorithm's and the end's communicators, give the signals back."""
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.dist.close()
        self.ending.close()
