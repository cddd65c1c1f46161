"""Shared helpers of the benchmarks that run whole trainings (``overlap``, ``stragglers``, ``gossip``).

One run is ``mpisgd.train.run(TrainConfig(...), comm=...)``, the loop of
``python -m mpisgd train``; :class:`TrainRunner` keeps the figures of every
run of one variant, :func:`summarize_variant` takes medians over them.
``overlap`` shares the emulated-cluster flags, medians and ratios from here
(its ``Runner`` builds its own TrainConfig).
"""

import math
import statistics

from ..comm import UsageError
from .report import progress

EMULATED_CLUSTER = "the emulated-cluster harness (issue 5)"


def median_or_none(values):
    """Median, a run that did not reach the target (None) counting as slower than any other; None if so."""
    ordered = sorted(math.inf if v is None else v for v in values)
    value = statistics.median(ordered)
    return None if math.isinf(value) else value


def add_training_arguments(parser) -> None:
    """``--model``, ``--dataset``, ``--batch-size`` and ``--lr`` of the training runs."""
    parser.add_argument("--model", default="mlp", help="model of mpisgd.train (default mlp)")
    parser.add_argument("--dataset", default="digits", help="dataset of mpisgd.train (default digits)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per rank and step (default 32)")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9; default 0.05)")


def add_emulated_arguments(parser) -> None:
    """``--network`` and ``--straggler``, exactly as ``overlap`` accepts them (refused until issue 5)."""
    emulated = parser.add_argument_group(f"emulated cluster (needs {EMULATED_CLUSTER}; not available yet)")
    emulated.add_argument("--network", metavar="RATE,DELAY",
                          help="link rate and delay of every rank, e.g. 1gbit,1ms (not available yet)")
    emulated.add_argument("--straggler", metavar="HOST:RATE,DELAY", action="append",
                          help="a slower link for one host (not available yet)")


def refuse_emulated(args) -> None:
    """UsageError (exit 2) for ``--network``/``--straggler``, with overlap's message."""
    wanted = [flag for flag, value in (("--network", getattr(args, "network", None)),
                                       ("--straggler", getattr(args, "straggler", None))) if value]
    if wanted:
        raise UsageError(f"{' and '.join(wanted)} {'needs' if len(wanted) == 1 else 'need'} {EMULATED_CLUSTER}, "
                         "which is not available yet; without these flags the benchmark runs on this "
                         "machine's real MPI")


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

    def __init__(self, comm, name: str, make_config, label: str):
        self.comm, self.name, self.make_config, self.label = comm, name, make_config, label
        self.runs = []

    def action(self) -> None:
        from ..train import run as train

        config = self.make_config()
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
