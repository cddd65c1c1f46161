"""The training loop shared by every algorithm: algorithms plug in, they do not copy it.

``run(config, comm)`` loads this rank's shard, builds the same model on
every rank, wraps a local ``torch.optim.SGD`` in the chosen algorithm and
trains. Each rank runs the same number of steps per epoch,
``ceil(n_train / (ranks * batch_size))``, cycling through its own shard (so
uneven non-IID shards never leave a rank waiting in a collective).

Evaluation: each rank evaluates its *own* model on its slice of the test
set and the counts are summed, so for algorithms whose ranks hold identical
models (sync) this is the model's accuracy on the whole test set, and for
the others the mean accuracy of the local models. For ratings data the
"accuracy" is the fraction of predictions within half a star; the RMSE is
recorded too.
"""

import logging
import math
import sys
import time

import numpy as np
import torch

from ..comm import Communicator, UsageError, select_device
from ..optimizer import DistributedOptimizer
from .data import load_dataset
from .metrics import MetricsWriter
from .models import build_model
from .partition import partition
from .summary import format_epoch, format_summary, summarize

log = logging.getLogger(__name__)


class ShardSampler:
    """Endless shuffled mini-batches from one rank's shard; reshuffles on every pass."""

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(size), 0

    def next(self) -> np.ndarray:
        picked = []
        needed = self.batch_size
        while needed > 0:
            if self.position == self.size:
                self.order, self.position = self.rng.permutation(self.size), 0
            take = self.order[self.position : self.position + needed]
            self.position += len(take)
            needed -= len(take)
            picked.append(take)
        return np.concatenate(picked)


def _tensors(x, y, dtype, device):
    x = torch.from_numpy(x)
    x = x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    y = torch.from_numpy(y)
    y = y.to(device=device, dtype=dtype) if y.is_floating_point() else y.to(device)
    return x, y


def _loss(task, output, target):
    if task == "ratings":
        return torch.nn.functional.mse_loss(output, target)
    return torch.nn.functional.cross_entropy(output, target)


@torch.no_grad()
def _evaluate(model, task, x, y) -> np.ndarray:
    """[correct, count, loss sum, squared error sum] on this rank's test slice."""
    if len(y) == 0:
        return np.zeros(4)
    output = model(x)
    if task == "ratings":
        error = output - y
        correct = (error.abs() <= 0.5).sum().item()
        squared = (error**2).sum().item()
        return np.array([correct, len(y), squared, squared])
    loss = torch.nn.functional.cross_entropy(output, y, reduction="sum").item()
    return np.array([(output.argmax(1) == y).sum().item(), len(y), loss, 0.0])


def _setup(config, harness):
    """Everything that can fail before training, checked on every rank together."""
    problem, state = "", {}
    try:
        config.validate()
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        metrics = MetricsWriter(config.metrics, rank=harness.rank, world_size=harness.size,
                                algorithm=config.algorithm)
        data = load_dataset(config.dataset, seed=config.seed, **config.data_options)
        shard = partition(data.y_train, harness.size, config.partition, config.seed)[harness.rank]
        test = np.array_split(np.arange(len(data.y_test)), harness.size)[harness.rank]
        device = select_device(harness, config.device)
        model = build_model(config.model, data.info, hidden=config.hidden, seed=config.seed, dtype=dtype).to(device)
        state = dict(dtype=dtype, metrics=metrics, info=data.info, device=device, model=model,
                     train=_tensors(data.x_train[shard], data.y_train[shard], dtype, device),
                     test=_tensors(data.x_test[test], data.y_test[test], dtype, device))
    except (ValueError, OSError, RuntimeError) as error:  # UsageError is a ValueError
        problem = str(error)
    harness.check_all(not problem, problem, UsageError)
    return state


def run(config, comm=None) -> dict:
    """Train as ``config`` says on ``comm`` (default COMM_WORLD); return the summary on every rank."""
    torch.set_num_threads(config.threads)
    harness = Communicator(comm)  # bookkeeping traffic, kept out of the algorithm's statistics
    try:
        return _train(config, harness, comm)
    finally:
        harness.free()


def _train(config, harness, comm):
    s = _setup(config, harness)
    model, info, metrics = s["model"], s["info"], s["metrics"]
    x_train, y_train = s["train"]
    x_test, y_test = s["test"]
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    names = [name for name, _ in model.named_parameters()]
    dist = DistributedOptimizer(optimizer, config.algorithm, comm=comm, names=names, **config.algorithm_options)
    rank0 = harness.rank == 0
    log.info("device %s, %d training samples in this shard, %d parameters, MPI thread level %d",
             s["device"], len(y_train), dist.flat.numel, harness.thread_level)
    steps_per_epoch = math.ceil(info.n_train / (harness.size * config.batch_size))
    sampler = ShardSampler(len(y_train), config.batch_size, seed=config.seed * 100003 + harness.rank)
    show_bar = rank0 and not config.quiet and (config.progress or (config.progress is None and sys.stderr.isatty()))
    bar = _progress(config.epochs * steps_per_epoch, show_bar)
    say = (bar.write if bar else print) if rank0 and not config.quiet else (lambda *_: None)
    metrics.record("start", config=_public(config), n_train=info.n_train, n_test=info.n_test,
                   params=dist.flat.numel, steps_per_epoch=steps_per_epoch, device=s["device"])

    start = time.perf_counter()
    reached_at, history, step, last = None, [], 0, None
    for epoch in range(1, config.epochs + 1):
        loss_sum = 0.0
        for _ in range(steps_per_epoch):
            index = torch.from_numpy(sampler.next()).to(x_train.device)
            dist.zero_grad()
            loss = _loss(info.task, model(x_train[index]), y_train[index])
            loss.backward()
            dist.step()
            step += 1
            loss_value = loss.item()
            dist.report_loss(loss_value)
            loss_sum += loss_value
            if bar:
                bar.update(1)
            if config.log_every and step % config.log_every == 0:
                metrics.record("step", step=step, epoch=epoch, wall_s=time.perf_counter() - start,
                               loss=loss_value, **_comm_fields(dist))
        if epoch % config.eval_every and epoch != config.epochs:
            continue
        if epoch == config.epochs:
            dist.finish()
        totals = np.concatenate([_evaluate(model, info.task, x_test, y_test), [loss_sum, steps_per_epoch]])
        harness.allreduce(totals)
        wall = time.perf_counter() - start
        last = _epoch_record(info.task, totals, epoch, step, wall)
        if reached_at is None and config.target_accuracy is not None and last["accuracy"] >= config.target_accuracy:
            reached_at = wall
        history.append(last)
        metrics.record("epoch", **last, **_comm_fields(dist))
        say(format_epoch(last, config.epochs))
        if config.stop_at_target and reached_at is not None:
            dist.finish()
            break

    stats = harness.allgather_object(dist.statistics())
    summary = summarize(config, harness.size, last, time.perf_counter() - start, reached_at, stats)
    metrics.record("summary", **summary)
    metrics.close()
    say(format_summary(summary))
    if bar:
        bar.close()
    dist.close()
    return summary


def _epoch_record(task, totals, epoch, step, wall) -> dict:
    correct, count, loss_total, squared, train_loss, batches = totals
    record = {"epoch": epoch, "step": step, "wall_s": wall, "loss": train_loss / batches,
              "test_loss": loss_total / count, "accuracy": correct / count}
    if task == "ratings":
        record["rmse"] = math.sqrt(squared / count)
    return record


def _comm_fields(dist) -> dict:
    stats = dist.statistics()
    return {"bytes_sent": stats["bytes_sent"], "comm_wait_s": stats["wait_s"]}


def _progress(total, show):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def _public(config) -> dict:
    from dataclasses import asdict

    return asdict(config)
