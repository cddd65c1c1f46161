"""Evaluation: test accuracy and loss of this rank's model, summed over the ranks.

Each rank evaluates its *own* model on its slice of the test set and the
counts are summed, so for algorithms whose ranks hold identical models
(sync) this is the model's accuracy on the whole test set, and for the
others the mean accuracy of the local models. Asynchronous ranks never wait
for each other mid-run: each evaluates its own model on the whole test set
and only the final evaluation (after ``finish()``) is summed. For ratings
data the "accuracy" is the fraction of predictions within half a star; the
RMSE is recorded too.
"""

import math

import numpy as np
import torch


def test_rows(n_test: int, asynchronous: bool, rank: int, size: int) -> slice:
    """The rows of the test set this rank evaluates: its contiguous slice (the ``np.array_split``
    layout: the first ``n_test % size`` ranks get one more), or all of them for asynchronous algorithms."""
    if asynchronous:
        return slice(0, n_test)
    base, extra = divmod(n_test, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


@torch.no_grad()
def local_totals(model, task, x, y) -> np.ndarray:
    """[correct, count, loss sum, squared error sum] on this rank's test slice."""
    if len(y) == 0:
        return np.zeros(4)
    training = model.training
    model.eval()  # BatchNorm's running statistics, no dropout
    try:
        output = model(x)
    finally:
        model.train(training)
    if task == "ratings":
        error = output - y
        correct = (error.abs() <= 0.5).sum().item()
        squared = (error**2).sum().item()
        return np.array([correct, len(y), squared, squared])
    loss = torch.nn.functional.cross_entropy(output, y, reduction="sum").item()
    return np.array([(output.argmax(1) == y).sum().item(), len(y), loss, 0.0])


def epoch_record(task, totals, epoch, step, wall) -> dict:
    """The ``epoch`` record's figures from the summed totals and the epoch's training loss."""
    correct, count, loss_total, squared, train_loss, batches = totals
    record = {"epoch": epoch, "step": step, "wall_s": wall, "loss": train_loss / max(batches, 1),
              "test_loss": loss_total / count, "accuracy": correct / count}
    if task == "ratings":
        record["rmse"] = math.sqrt(squared / count)
    return record


class Evaluator:
    """One evaluation: the test totals, the epoch's training loss and a flag, all-reduced when collective."""

    def __init__(self, model, task: str, test, rows: slice, harness):
        """``test``: the whole test set (inputs, targets); ``rows``: this rank's part (:func:`test_rows`)."""
        self.model, self.task, self.harness = model, task, harness
        self.all_x, self.all_y = test
        self.x, self.y = self.all_x[rows], self.all_y[rows]  # views

    def own_accuracy(self) -> float:
        """This rank's own model on the whole test set, no communication (one pass over the test set)."""
        correct, count, _, _ = local_totals(self.model, self.task, self.all_x, self.all_y)
        return float(correct / count)

    def __call__(self, *, epoch, step, clock, train_loss, batches, flag=False, collective=True):
        """The epoch record, and whether any rank raised ``flag`` (this rank's alone when not collective)."""
        totals = np.concatenate([local_totals(self.model, self.task, self.x, self.y),
                                 [train_loss, batches, float(flag)]])
        if collective:
            self.harness.allreduce(totals)
        return epoch_record(self.task, totals[:-1], epoch, step, clock.elapsed()), totals[-1] > 0
