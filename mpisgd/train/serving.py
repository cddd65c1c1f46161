"""A master-worker server's mid-run evaluations: rank 0 evaluates the center while it serves.

Rank 0 of a master-worker run is a server: it holds no data and spends the
run in ``algorithm.serve()``. So that the run has epoch records (and a time
to accuracy, and a moving progress bar) like every other, rank 0 evaluates
the model it serves from time to time, between two polls of the service
(``serve(between=...)``):

- **When**: every ``--eval-every`` epochs' worth of worker steps, as the
  server can tell them (``algorithm.worker_steps()``, an estimate from the
  contributions it received: the mean local steps per worker); the epoch of
  the record is that estimate over the steps per epoch.
- **What**: ``algorithm.current_slice()``, the center as it stands, copied
  into rank 0's model and evaluated on the whole test set by rank 0 alone
  (no collective: the workers never wait for it). The record's ``loss`` is
  0 (a server trains on nothing); ``step`` is the estimated worker steps.
- **Cost**: the evaluation is real time the server spends: no worker
  message is answered while it runs (a worker waiting for a reply waits
  that much longer), and it counts in the run's wall time like the
  evaluations of the other algorithms.
- **Only with one server** (``--servers 1``): with several, rank 0 holds
  one slice of the center and assembling the rest would make the other
  servers stop serving; rank 0 then evaluates at the end only, as does an
  algorithm whose ``current_slice()`` or ``worker_steps()`` is None.
"""

import math


class CenterEvaluation:
    """The ``between`` hook of a serving rank 0: advances the progress bar, evaluates when an epoch is due."""

    def __init__(self, trainer):
        self.trainer, self.algorithm = trainer, trainer.dist.algorithm
        self.per_epoch = trainer.steps_per_epoch
        self.every = trainer.config.eval_every * self.per_epoch  # worker steps between evaluations
        self.due = self.every

    @classmethod
    def of(cls, trainer):
        """The hook for this rank, or None (not rank 0, several servers, or nothing to show mid-run)."""
        algorithm = trainer.dist.algorithm
        if trainer.harness.rank != 0 or trainer.roles.servers != 1 or algorithm.worker_steps() is None \
                or algorithm.current_slice() is None:
            return None
        return cls(trainer)

    def __call__(self) -> bool:
        steps = self.algorithm.worker_steps()
        trainer = self.trainer
        trainer.records.advance_to(int(steps))
        if steps < self.due:
            return False
        self.due = (math.floor(steps / self.every) + 1) * self.every
        host = self.algorithm.model_to_host()
        host[...] = self.algorithm.current_slice()
        self.algorithm.host_to_model()
        trainer.step = int(steps)
        trainer.evaluate_epoch(int(steps // self.per_epoch), 0.0, 0, final=False)
        return True


def final_epoch(trainer) -> int:
    """The epoch of a server's final record: the workers' estimated steps in epochs (rounded up), else
    ``--epochs``."""
    steps = trainer.dist.algorithm.worker_steps()
    if steps is None:
        return trainer.config.epochs
    trainer.step = int(steps)
    return max(1, math.ceil(steps / trainer.steps_per_epoch))
