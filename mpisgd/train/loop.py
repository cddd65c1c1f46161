"""The training loop shared by every algorithm: algorithms plug in, they do not copy it.

``run(config, comm)`` loads this rank's shard, builds the same model on
every rank, wraps a local ``torch.optim.SGD`` in the chosen algorithm and
trains. Each rank runs the same number of steps per epoch,
``ceil(n_train / (ranks * batch_size))``, cycling through its own shard (so
uneven non-IID shards never leave a rank waiting in a collective).

Evaluation: each rank evaluates its *own* model on its slice of the test
set and the counts are summed, so for algorithms whose ranks hold identical
models (sync) this is the model's accuracy on the whole test set, and for
the others the mean accuracy of the local models. Asynchronous algorithms
never wait for each other mid-run: there every rank evaluates its own model
on the whole test set and the records (written by rank 0) are rank 0's;
the final evaluation, after ``finish()`` (exit protocol and one average),
is the common model's. A ``--time-budget`` is checked every step by
asynchronous ranks and at evaluations (agreed by all ranks) otherwise. For ratings data the
"accuracy" is the fraction of predictions within half a star; the RMSE is
recorded too.
"""

import logging
import math
import sys
import time

import numpy as np
import torch

from ..algorithm import get_algorithm
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
        options = _algorithm_options(config, harness)
        if get_algorithm(config.algorithm).asynchronous:
            test = np.arange(len(data.y_test))  # every rank evaluates its own model on the whole test set
        else:
            test = np.array_split(np.arange(len(data.y_test)), harness.size)[harness.rank]
        device = select_device(harness, config.device)
        model = build_model(config.model, data.info, hidden=config.hidden, seed=config.seed, dtype=dtype).to(device)
        state = dict(options=options, dtype=dtype, metrics=metrics, info=data.info, device=device, model=model,
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


def _algorithm_options(config, harness) -> dict:
    """The algorithm's options, plus this rank's emulated slow uplink when it is a straggler."""
    options = dict(config.algorithm_options)
    slow = config.slow_rank_list()
    if any(r >= harness.size for r in slow):
        raise UsageError(f"--slow-ranks {config.slow_ranks} names a rank outside 0..{harness.size - 1}")
    if config.slow_link_mbps is not None:
        if "slow_link" not in get_algorithm(config.algorithm).options:
            raise UsageError("--slow-link-mbps works with the asynchronous algorithms (swift, divshare, adpsgd)")
        if harness.rank in slow:
            options["slow_link"] = 8.0 / (config.slow_link_mbps * 1e6)  # seconds per byte
    return options


def _slow_down(dist, seconds: float) -> None:
    """A straggler's extra compute time: sleep (like a busy GPU), keeping messages moving."""
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        time.sleep(min(left, 0.002))
        dist.progress()


def _train(config, harness, comm):
    s = _setup(config, harness)
    model, info, metrics = s["model"], s["info"], s["metrics"]
    x_train, y_train = s["train"]
    x_test, y_test = s["test"]
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    names = [name for name, _ in model.named_parameters()]
    dist = DistributedOptimizer(optimizer, config.algorithm, comm=comm, names=names, **s["options"])
    asynchronous = dist.algorithm.asynchronous
    straggler = harness.rank in config.slow_rank_list() and config.slow_factor > 1
    rank0 = harness.rank == 0
    log.info("device %s, %d training samples in this shard, %d parameters, MPI thread level %d",
             s["device"], len(y_train), dist.flat.numel, harness.thread_level)
    steps_per_epoch = math.ceil(info.n_train / (harness.size * config.batch_size))
    sampler = ShardSampler(len(y_train), config.batch_size, seed=config.seed * 100003 + harness.rank)
    show_bar = rank0 and not config.quiet and (config.progress or (config.progress is None and sys.stderr.isatty()))
    bar = _progress(config.epochs * steps_per_epoch, show_bar)
    say = (bar.write if bar else print) if rank0 and not config.quiet else (lambda *_: None)
    metrics.record("start", config=_public(config), n_train=info.n_train, n_test=info.n_test,
                   params=dist.flat.numel, steps_per_epoch=steps_per_epoch, device=s["device"],
                   asynchronous=asynchronous)

    start = time.perf_counter()
    budget = config.time_budget if config.time_budget is not None else math.inf
    reached_at, step, last, stopping, evaluated_final = None, 0, None, False, False
    for epoch in range(1, config.epochs + 1):
        loss_sum, taken = 0.0, 0
        for _ in range(steps_per_epoch):
            if asynchronous and time.perf_counter() - start > budget:
                stopping = True  # each asynchronous rank stops on its own; finish() gathers them
                break
            began = time.perf_counter()
            index = torch.from_numpy(sampler.next()).to(x_train.device)
            dist.zero_grad()
            loss = _loss(info.task, model(x_train[index]), y_train[index])
            loss.backward()
            dist.step()
            step, taken = step + 1, taken + 1
            loss_value = loss.item()
            dist.report_loss(loss_value)
            loss_sum += loss_value
            if straggler:
                _slow_down(dist, (time.perf_counter() - began) * (config.slow_factor - 1))
            if bar:
                bar.update(1)
            if config.log_every and step % config.log_every == 0:
                metrics.record("step", step=step, epoch=epoch, wall_s=time.perf_counter() - start,
                               loss=loss_value, **_comm_fields(dist))
        final = stopping or epoch == config.epochs
        if not final and epoch % config.eval_every:
            continue
        if final:
            dist.finish()
        over = float(not asynchronous and time.perf_counter() - start > budget)  # agreed by the all-reduce
        totals = np.concatenate([_evaluate(model, info.task, x_test, y_test), [loss_sum, max(taken, 1), over]])
        if final or not asynchronous:  # asynchronous ranks never wait for each other mid-run
            harness.allreduce(totals)
        wall = time.perf_counter() - start
        last = _epoch_record(info.task, totals[:-1], epoch, step, wall)
        if reached_at is None and config.target_accuracy is not None and last["accuracy"] >= config.target_accuracy:
            reached_at = wall
        metrics.record("epoch", **last, **_comm_fields(dist))
        say(format_epoch(last, config.epochs))
        evaluated_final = final
        stopping = stopping or totals[-1] > 0 or (config.stop_at_target and reached_at is not None)
        if stopping:
            break
    if not evaluated_final:  # stopped early at an evaluation: finish, then measure the final model
        dist.finish()
        totals = np.concatenate([_evaluate(model, info.task, x_test, y_test), [0.0, 1.0, 0.0]])
        harness.allreduce(totals)  # the same shape as the in-loop final evaluation
        last = {**_epoch_record(info.task, totals[:-1], last["epoch"], step, time.perf_counter() - start),
                "loss": last["loss"]}
        metrics.record("epoch", **last, **_comm_fields(dist))

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
