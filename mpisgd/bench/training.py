"""Shared helpers of the benchmarks that run whole trainings (``overlap``, ``stragglers``, ``gossip``).

One run is ``mpisgd.train.run(TrainConfig(...), comm=...)``, the loop of
``python -m mpisgd train``; :class:`TrainRunner` keeps the figures of every
run of one variant, :func:`summarize_variant` takes medians over them.
``overlap`` shares the medians and ratios from here (its ``Runner`` builds
its own TrainConfig).
"""

import dataclasses
import math
import os
import statistics

from ..errors import UsageError

from . import emulated
from .report import progress

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
    emulated.add_arguments(parser)


def add_target_and_repeats(parser, defaults: dict, quick: dict, runs_of: str) -> None:
    """``--target-accuracy`` and ``--repeats`` (runs per ``runs_of``), with their defaults and --quick's."""
    parser.add_argument("--target-accuracy", type=float,
                        help=f"test accuracy for the time to accuracy (default {defaults['target_accuracy']}; "
                        f"--quick {quick['target_accuracy']})")
    parser.add_argument("--repeats", type=int, help=f"runs per {runs_of}, interleaved (default "
                        f"{defaults['repeats']}; --quick {quick['repeats']})")


def training_settings(args) -> dict:
    """The settings every training benchmark shares, from :func:`add_training_arguments`' flags."""
    if args.batch_size < 1 or args.hidden < 1 or args.lr <= 0:
        raise UsageError("--batch-size and --hidden must be at least 1 and --lr must be positive")
    return {"model": args.model, "dataset": args.dataset, "hidden": args.hidden, "batch_size": args.batch_size,
            "lr": args.lr, "momentum": 0.9, "seed": args.seed, "threads": args.threads,
            "metrics_dir": args.metrics_dir}


def train_config(settings: dict, algorithm: str, **fields):
    """The TrainConfig of one benchmark run: the shared settings, ``algorithm``, and ``fields``."""
    from ..train import TrainConfig

    return TrainConfig(algorithm=algorithm, model=settings["model"], dataset=settings["dataset"],
                       hidden=settings["hidden"], batch_size=settings["batch_size"], lr=settings["lr"],
                       momentum=settings["momentum"], seed=settings["seed"],
                       target_accuracy=settings.get("target_accuracy"), quiet=True, progress=False,
                       threads=settings["threads"], **fields)


def metrics_path(directory, name: str, index: int):
    """Where run ``index`` of variant ``name`` keeps its metrics (rank 0 writes), or None."""
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{name}-{index}.jsonl")


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
        "bytes_sent": summary["bytes_sent"],
        "bytes_sent_per_rank": summary["bytes_sent_per_rank"],
        "comm_wait_s": summary["comm_wait_s"],
        "final_accuracy": summary["final_accuracy"],
        "time_to_accuracy_s": summary["time_to_accuracy_s"],
        "delivery": mean_of(summary.get("delivery_per_rank")),
        "staleness_s": mean_of(summary.get("staleness_per_rank")),
        "delivery_per_rank": summary.get("delivery_per_rank"),
        "staleness_per_rank": summary.get("staleness_per_rank"),
    }


class TrainRunner:
    """The training runs of one variant; each :meth:`action` trains once with ``make_config()``."""

    def __init__(self, comm, name: str, make_config, label: str, metrics_dir=None):
        self.comm, self.name, self.make_config, self.label = comm, name, make_config, label
        self.metrics_dir = metrics_dir
        self.runs = []

    def action(self) -> None:
        from ..train import run as train

        config = dataclasses.replace(self.make_config(),
                                     metrics=metrics_path(self.metrics_dir, self.name, len(self.runs)))
        figures = figures_of(train(config, comm=self.comm))
        self.runs.append(figures)
        tta = figures["time_to_accuracy_s"]
        progress(self.comm, f"{self.label} {self.name} run {len(self.runs)}: accuracy {figures['final_accuracy']:.3f}, "
                            f"time to {config.target_accuracy} "
                            f"{'not reached' if tta is None else f'{tta:.2f} s'}, "
                            f"{figures['bytes_sent'] / 1e6:.2f} MB/rank, {figures['steps']} steps, "
                            f"{figures['wall_s']:.1f} s")


MEDIAN_FIGURES = ("wall_s", "job_s", "bytes_sent", "comm_wait_s", "final_accuracy", "time_to_accuracy_s",
                  "delivery", "staleness_s", "steps", "epochs")


def summarize_variant(runs: list, job_seconds: list) -> dict:
    """Medians over the runs (a run that missed the target counts as slowest), plus the runs."""
    for run, seconds in zip(runs, job_seconds):
        run["job_s"] = seconds
    entry = {}
    for figure in MEDIAN_FIGURES:
        values = [run[figure] for run in runs]
        if figure in ("delivery", "staleness_s") and all(v is None for v in values):
            entry[figure] = None
        else:
            entry[figure] = median_or_none(values)
    entry["reached_target"] = sum(run["time_to_accuracy_s"] is not None for run in runs)
    entry["runs"] = runs
    return entry


def over(numerator, denominator):
    """numerator / denominator, None when either is missing (or the denominator is 0)."""
    return None if numerator is None or not denominator else numerator / denominator
