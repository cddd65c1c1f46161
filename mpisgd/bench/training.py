"""The one run loop of the benchmarks that train (``overlap``, ``stragglers``, ``gossip``, ``scaling``).

One run is ``mpisgd.train.run(TrainConfig(...), comm=...)``, the loop of
``python -m mpisgd train``. A benchmark builds one :class:`TrainRunner` per
variant, runs them interleaved (medians over the repeats,
:func:`summarize_variant`) and computes its ratios (:func:`compare`, :func:`over`). Besides the summary's figures (:func:`figures_of`), a
runner with ``timeline_every`` keeps the training time without evaluations
(:func:`split_timeline`, from rank 0's metrics records).
"""

import contextlib
import dataclasses
import json
import math
import os
import shutil
import statistics
import tempfile

from ..errors import UsageError
from . import emulated
from .report import progress
from .timing import interleave


def median_or_none(values):
    """Median, a run that did not reach the target (None) counting as slower than any other; None if so."""
    ordered = sorted(math.inf if v is None else v for v in values)
    value = statistics.median(ordered)
    return None if math.isinf(value) else value


def add_training_arguments(parser) -> None:
    """``--model``, ``--dataset``, ``--hidden``, ``--batch-size``, ``--lr``, ``--metrics-dir``, and the
    emulated cluster's ``--network``/``--straggler``."""
    parser.add_argument("--model", default="mlp", help="model of mpisgd.train (default mlp)")
    parser.add_argument("--dataset", default="digits", help="dataset of mpisgd.train (default digits)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden width of the model (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per rank and step (default 32)")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9; default 0.05)")
    parser.add_argument("--metrics-dir", metavar="DIR",
                        help="keep every run's metrics (JSONL, one file per run) in DIR, for "
                             "python -m mpisgd report")
    add_partition_argument(parser)
    emulated.add_arguments(parser)


def add_partition_argument(parser) -> None:
    """``--partition iid|dirichlet:ALPHA``: how the training set is split over the ranks."""
    parser.add_argument("--partition", default="iid", metavar="iid|dirichlet:ALPHA",
                        help="the ranks' shards: iid (default) or non-IID, class proportions per rank drawn from "
                             "Dirichlet(ALPHA), ALPHA > 0 (smaller: more skewed; 0.1 is strongly non-IID)")


def partition_of(args) -> str:
    """The checked ``--partition`` (UsageError, one line, on a bad value)."""
    from ..train.partition import parse_partition

    parse_partition(args.partition)
    return args.partition


def add_target_and_repeats(parser, defaults: dict, quick: dict, runs_of: str) -> None:
    """``--target-accuracy`` and ``--repeats`` (runs per ``runs_of``), with their defaults and --quick's."""
    parser.add_argument("--target-accuracy", type=float,
                        help=f"test accuracy for the time to accuracy (default {defaults['target_accuracy']}; "
                        f"--quick {quick['target_accuracy']})")
    parser.add_argument("--repeats", type=int, help=f"runs per {runs_of}, interleaved (default "
                        f"{defaults['repeats']}; --quick {quick['repeats']})")


def picker(args, defaults: dict, quick: dict):
    """``pick(name)``: the option ``name`` as given, else its default (``--quick``'s when quick)."""
    base = quick if args.quick else defaults

    def pick(name):
        value = getattr(args, name)
        return base[name] if value is None else value

    return pick


def training_settings(args) -> dict:
    """The settings every training benchmark shares, from :func:`add_training_arguments`' flags."""
    if args.batch_size < 1 or args.hidden < 1 or args.lr <= 0:
        raise UsageError("--batch-size and --hidden must be at least 1 and --lr must be positive")
    return {"model": args.model, "dataset": args.dataset, "hidden": args.hidden, "batch_size": args.batch_size,
            "lr": args.lr, "momentum": 0.9, "seed": args.seed, "threads": args.threads,
            "metrics_dir": args.metrics_dir, "partition": partition_of(args)}


def train_config(settings: dict, algorithm: str, **fields):
    """The TrainConfig of one benchmark run: the shared settings, ``algorithm``, and ``fields``."""
    from ..train import TrainConfig

    return TrainConfig(algorithm=algorithm, model=settings["model"], dataset=settings["dataset"],
                       hidden=settings["hidden"], batch_size=settings["batch_size"], lr=settings["lr"],
                       momentum=settings["momentum"], seed=settings["seed"],
                       target_accuracy=settings.get("target_accuracy"), quiet=True, progress=False,
                       threads=settings["threads"], partition=settings.get("partition", "iid"), **fields)


def options_taken(algorithm: str, **candidates) -> dict:
    """The ``candidates`` that are options of ``algorithm`` (``period`` for local and cocod, not sync)."""
    from ..algorithm import get_algorithm

    taken = get_algorithm(algorithm).options
    return {name: value for name, value in candidates.items() if name in taken}


def steps_per_epoch(settings: dict, ranks: int) -> int:
    """The loop's steps per epoch with these settings on ``ranks`` ranks."""
    from ..train import load_dataset
    from ..train.step import steps_per_epoch as loop_steps

    n_train = load_dataset(settings["dataset"], seed=settings["seed"]).info.n_train
    return loop_steps(n_train, ranks, settings["batch_size"])


def metrics_path(directory, name: str, index: int):
    """Where run ``index`` of variant ``name`` keeps its metrics (rank 0 writes), or None."""
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{name}-{index}.jsonl")


@contextlib.contextmanager
def metrics_folder(comm, keep, prefix: str):
    """Rank 0's folder for the runs' metrics (None on the others): ``keep``, or a temporary one removed after."""
    directory = None
    if comm.Get_rank() == 0:
        directory = keep or tempfile.mkdtemp(prefix=prefix)
    try:
        yield directory
    finally:
        if directory and not keep:
            shutil.rmtree(directory, ignore_errors=True)


def warm_up(comm, config) -> None:
    """One untimed training run (loads the data set, warms torch and MPI up before the timed runs)."""
    from ..train import run as train

    train(config, comm=comm)


def mean_of(values):
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in (values or []) if v is not None]
    return statistics.fmean(present) if present else None


def figures_of(summary: dict) -> dict:
    """The figures the benchmarks keep from one summary of mpisgd.train.run."""
    return {
        "steps": summary["steps"],
        "epochs": summary["epochs"],
        "wall_s": summary["wall_s"],
        "wall_per_iter_s": summary["wall_s"] / summary["steps"] if summary["steps"] else None,
        # each rank's wall time per step (steps differ between ranks in the asynchronous algorithms)
        "step_s_per_rank": [summary["wall_s"] / n if n else None for n in summary.get("steps_per_rank", [])],
        "bytes_sent": summary["bytes_sent"],
        "bytes_sent_per_rank": summary["bytes_sent_per_rank"],
        "comm_wait_s": summary["comm_wait_s"],
        "comm_progress_s": summary["comm_progress_s"],
        "final_accuracy": summary["final_accuracy"],
        "final_rmse": summary.get("final_rmse"),  # ratings (--model mf)
        "time_to_accuracy_s": summary["time_to_accuracy_s"],
        "delivery": mean_of(summary.get("delivery_per_rank")),
        "staleness_s": mean_of(summary.get("staleness_per_rank")),
        "delivery_per_rank": summary.get("delivery_per_rank"),
        "staleness_per_rank": summary.get("staleness_per_rank"),
    }


def split_timeline(path: str, target) -> dict:
    """Training time without evaluations, from rank 0's metrics records (one ``step`` record per epoch).

    Epoch ``e`` trains from the end of the evaluation of epoch ``e - 1``
    (its ``epoch`` record) to its last step (its ``step`` record); the rest
    is evaluation (and, in the last epoch, ``finish()``).
    """
    with open(path, encoding="utf-8") as file:
        records = [json.loads(line) for line in file if line.strip()]
    step_walls = {r["step"]: r["wall_s"] for r in records if r["event"] == "step"}
    epochs = [r for r in records if r["event"] == "epoch"]
    train_s, previous_end, train_tta, reached_epoch = 0.0, 0.0, None, None
    for record in epochs:
        if record["step"] not in step_walls:
            raise RuntimeError(f"no step record at the end of epoch {record['epoch']} in {path}")
        train_s += step_walls[record["step"]] - previous_end
        previous_end = record["wall_s"]
        if train_tta is None and target is not None and record["accuracy"] >= target:
            train_tta, reached_epoch = train_s, record["epoch"]
    return {"train_s": train_s, "eval_s": previous_end - train_s, "train_time_to_accuracy_s": train_tta,
            "epochs_to_accuracy": reached_epoch}


def _seconds(value) -> str:
    return "not reached" if value is None else f"{value:.2f} s"


class TrainRunner:
    """The training runs of one variant; each :meth:`action` trains once with ``make_config()`` and keeps
    the run's figures in ``runs``.

    ``metrics_dir``: where rank 0 keeps each run's metrics (None: nowhere).
    ``timeline_every`` (the steps per epoch): the loop records a ``step``
    event at the end of every epoch and the run also gets ``iter_s`` (rank
    0's time in training steps per step, without evaluations) and the
    figures of :func:`split_timeline`; needs ``metrics_dir`` on rank 0.
    ``throttle``: a function that returns this rank's throttle for one run
    (``mpisgd.train.run(..., throttle=...)``), or None. ``extra``: a function
    ``summary -> dict`` of more figures (numbers or None) to keep, or None.
    """

    def __init__(self, comm, name: str, make_config, label: str, metrics_dir=None, *, timeline_every=None,
                 throttle=None, extra=None):
        self.comm, self.name, self.make_config, self.label = comm, name, make_config, label
        self.metrics_dir, self.timeline_every, self.throttle = metrics_dir, timeline_every, throttle
        self.extra = extra
        self.runs = []

    def warm_up(self, epochs: int) -> None:
        """One untimed run of ``epochs`` epochs (none when 0)."""
        if epochs:
            warm_up(self.comm, dataclasses.replace(self.make_config(), epochs=epochs))

    def action(self) -> None:
        from ..train import run as train

        path = metrics_path(self.metrics_dir, self.name, len(self.runs))
        config = dataclasses.replace(self.make_config(), metrics=path)
        if self.timeline_every:
            config = dataclasses.replace(config, log_every=self.timeline_every)
        summary = train(config, comm=self.comm, throttle=self.throttle() if self.throttle else None)
        figures = figures_of(summary)
        if self.extra:
            figures.update(self.extra(summary))
        if self.timeline_every:
            timeline = split_timeline(path, config.target_accuracy) if self.comm.Get_rank() == 0 else None
            timeline = self.comm.bcast(timeline, root=0)  # rank 0's timeline, the same figures everywhere
            figures = {"iter_s": timeline["train_s"] / summary["steps"], **timeline, **figures}
        self.runs.append(figures)
        self._report(figures, config.target_accuracy)

    def _report(self, figures: dict, target) -> None:
        speed = f"{1e3 * figures['iter_s']:.2f} ms/iter, " if "iter_s" in figures else ""
        reached = f"time to {target:g} {_seconds(figures['time_to_accuracy_s'])}, " if target is not None else ""
        progress(self.comm, f"{self.label} {self.name} run {len(self.runs)}: {speed}accuracy "
                            f"{figures['final_accuracy']:.3f}, {reached}{figures['bytes_sent'] / 1e6:.2f} MB/rank, "
                            f"{figures['steps']} steps, blocked {figures['comm_wait_s']:.3f} s, "
                            f"{figures['wall_s']:.1f} s")


def timed_runners(comm, settings: dict, directory, label: str) -> dict:
    """One runner per algorithm, the same settings but the algorithm and its ``period``, with the timeline
    figures (``iter_s``: training time per step without evaluations); for ``overlap`` and ``scaling``."""
    spe = steps_per_epoch(settings, comm.Get_size())

    def maker(algorithm):
        return lambda: train_config(settings, algorithm, epochs=settings["epochs"],
                                    algorithm_options=options_taken(algorithm, period=settings["period"]))

    return {name: TrainRunner(comm, name, maker(name), label, directory, timeline_every=spe)
            for name in settings["algorithms"]}


def summarize_variant(runs: list, job_seconds: list) -> dict:
    """Medians of every figure over the runs (a run that missed the target counts as slowest), the number
    of runs that reached the target, and the runs themselves. ``job_s``: the whole run with set-up,
    slowest rank (:func:`.timing.job_time`)."""
    for run, seconds in zip(runs, job_seconds):
        run["job_s"] = seconds
    entry = {}
    for figure, value in runs[0].items():
        if not figure.endswith("_per_rank"):  # per-rank lists stay in the runs
            entry[figure] = median_or_none([run[figure] for run in runs])
    entry["reached_target"] = sum(run["time_to_accuracy_s"] is not None for run in runs)
    entry["step_s_ranks"] = step_spread(runs)
    if "train_s" in entry:  # timeline runs: time blocked over time in training steps
        entry["blocked_fraction"] = entry["comm_wait_s"] / entry["train_s"] if entry["train_s"] else None
    entry["runs"] = runs
    return entry


def step_spread(runs: list):
    """The ranks' wall time per step: the fastest, median and slowest rank of each run, medians over runs
    (None without per-rank steps). On an oversubscribed machine this is what the ranks really got."""
    spreads = []
    for run in runs:
        times = sorted(t for t in run.get("step_s_per_rank") or [] if t is not None)
        if times:
            spreads.append({"min": times[0], "median": statistics.median(times), "max": times[-1]})
    if not spreads:
        return None
    return {key: statistics.median(spread[key] for spread in spreads) for key in ("min", "median", "max")}


def run_interleaved(comm, runners: dict, repeats: int) -> dict:
    """Every runner ``repeats`` times, interleaved in alternating order; name -> :func:`summarize_variant`."""
    samples = interleave(comm, {name: runner.action for name, runner in runners.items()}, rounds=repeats,
                         warmup=0)
    return {name: summarize_variant(runner.runs, samples[name]) for name, runner in runners.items()}


def compare(comm, runners: dict, repeats: int, ratios_of, label: str):
    """:func:`run_interleaved`, then ``ratios_of(results)``, shown on one progress line (``n/a`` where
    a ratio is missing); returns (results, ratios)."""
    results = run_interleaved(comm, runners, repeats)
    ratios = ratios_of(results)
    shown = ", ".join(f"{key} {'n/a' if value is None else f'{value:.3f}'}" for key, value in ratios.items())
    progress(comm, f"{label}: {shown}")
    return results, ratios


def over(numerator, denominator):
    """numerator / denominator, None when either is missing (or the denominator is 0)."""
    return None if numerator is None or not denominator else numerator / denominator
