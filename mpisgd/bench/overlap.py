"""Training time of ``sync``, ``local`` and ``cocod`` side by side, with the real training loop.

Every run is ``mpisgd.train.run(TrainConfig(...), comm=MPI.COMM_WORLD)``,
the loop ``python -m mpisgd train`` uses, with the same model, data, seed,
batch size, learning rate and ranks for the three algorithms, and the same
``--period`` for ``local`` and ``cocod``:

``sync``   bucketed gradient ``Iallreduce`` every step.
``local``  Local SGD: a blocking parameter ``Allreduce`` every ``period`` steps.
``cocod``  CoCoD-SGD: the parameter average of one round runs in the
           background (``Iallreduce``, ``Test()`` after every local step)
           while the next ``period`` local steps are taken.

After one untimed warm-up run of ``--warmup-epochs`` per algorithm, the
three algorithms train ``--repeats`` times each, interleaved in alternating
order (sync local cocod, cocod local sync, ...), and the report keeps the
median of every figure over the repetitions:

``iter_s``           training time per iteration: rank 0's time in the
                     training steps divided by the steps, *without* the
                     per-epoch evaluation (nor the final ``finish()``, which
                     the loop runs just before the last evaluation). Taken
                     from the loop's own metrics records (a ``step`` record
                     at the end of every epoch, an ``epoch`` record after
                     the evaluation), written to a temporary file.
``wall_per_iter_s``  the loop's ``wall_s / steps``: evaluations included.
``comm_wait_s``      time blocked in communication (``Wait``/blocking
                     calls), mean over ranks, whole run.
``comm_progress_s``  time in ``Test()`` calls, mean over ranks.
``bytes_sent``       bytes sent per rank (mean over ranks).
``final_accuracy``   test accuracy after the last epoch.
``time_to_accuracy_s``  the loop's wall time until the first evaluation at
                     or above ``--target-accuracy`` (evaluations included;
                     ``null`` when never reached), and
                     ``train_time_to_accuracy_s`` the same without the
                     evaluations; ``epochs_to_accuracy`` the epoch of that
                     evaluation (separates convergence per step from speed).

Ratios (sync or local over cocod; above 1: cocod is faster):
``iter_sync_over_cocod``, ``iter_local_over_cocod`` (``iter_s``) and
``tta_sync_over_cocod``, ``tta_local_over_cocod`` (``time_to_accuracy_s``;
``null`` when either did not reach the target), and ``iter_cocod_over_bound``:
CoCoD's ``iter_s`` over what perfect overlap would give, ``max(compute,
all-reduce / period)``, both estimated from Local SGD's run
(``results.cocod.overlap_bound``). No goal in the report: on one machine MPI
uses shared memory and communication is nearly free, so no speed-up is
expected there. On the emulated cluster (``--network 1gbit,1ms``,
:mod:`.emulated`) the goals of docs/results.md apply: ``tta_sync_over_cocod``
at least 2 and ``iter_cocod_over_bound`` at most 1.2.

torch is imported inside the functions: the process that only parses the
options and re-launches under mpiexec then starts quickly.
"""

import json
import math
import shutil
import tempfile

from ..errors import UsageError
from .report import progress
from .timing import interleave
from .training import (add_target_and_repeats, add_training_arguments, median_or_none, metrics_path, over,
                       train_config, training_settings)

SUMMARY = "sync, local and cocod trained side by side: time per iteration, blocked time, time to accuracy"
GOALS = {}  # informative: no speed-up of cocod is expected where communication is nearly free
ALGORITHMS = ("sync", "local", "cocod")
DEFAULTS = {"epochs": 20, "repeats": 5, "warmup_epochs": 1, "target_accuracy": 0.93}
QUICK = {"epochs": 2, "repeats": 2, "warmup_epochs": 1, "target_accuracy": 0.5}
FIGURES = ("iter_s", "wall_per_iter_s", "train_s", "eval_s", "wall_s", "job_s", "comm_wait_s",
           "comm_progress_s", "bytes_sent", "final_accuracy", "time_to_accuracy_s", "train_time_to_accuracy_s",
           "epochs_to_accuracy")


def add_arguments(parser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default {DEFAULTS['epochs']}; "
                        f"--quick {QUICK['epochs']})")
    parser.add_argument("--period", type=int, default=4,
                        help="local steps between averages, for local and cocod alike (default 4)")
    add_target_and_repeats(parser, DEFAULTS, QUICK, "algorithm (timed)")
    parser.add_argument("--warmup-epochs", type=int, help="epochs of the untimed warm-up run per algorithm "
                        f"(default {DEFAULTS['warmup_epochs']}; 0: none)")


def resolve_settings(args) -> dict:
    """The run's settings from the options (``--quick`` picks other defaults); UsageError if invalid."""
    base = QUICK if args.quick else DEFAULTS
    settings = {
        "algorithms": list(ALGORITHMS),
        **training_settings(args),
        "epochs": args.epochs if args.epochs is not None else base["epochs"],
        "period": args.period,
        "target_accuracy": args.target_accuracy if args.target_accuracy is not None else base["target_accuracy"],
        "repeats": args.repeats if args.repeats is not None else base["repeats"],
        "warmup_epochs": args.warmup_epochs if args.warmup_epochs is not None else base["warmup_epochs"],
    }
    if min(settings["epochs"], settings["repeats"], settings["period"], settings["batch_size"]) < 1:
        raise UsageError("--epochs, --repeats, --period and --batch-size must be at least 1")
    if settings["warmup_epochs"] < 0 or settings["lr"] <= 0:
        raise UsageError("--warmup-epochs must not be negative and --lr must be positive")
    if not 0 < settings["target_accuracy"] <= 1:
        raise UsageError(f"--target-accuracy must be in (0, 1], got {settings['target_accuracy']}")
    return settings


def run_config(settings: dict, algorithm: str, *, epochs: int, metrics=None, log_every: int = 0):
    """The TrainConfig of one run: the same for every algorithm but the algorithm and its period."""
    from ..algorithm import get_algorithm

    period = {"period": settings["period"]} if "period" in get_algorithm(algorithm).options else {}
    return train_config(settings, algorithm, epochs=epochs, metrics=metrics, log_every=log_every,
                        algorithm_options=period)


def steps_per_epoch(settings: dict, ranks: int) -> int:
    """The loop's steps per epoch: ceil(n_train / (ranks * batch_size))."""
    from ..train import load_dataset

    n_train = load_dataset(settings["dataset"], seed=settings["seed"]).info.n_train
    return math.ceil(n_train / (ranks * settings["batch_size"]))


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


class Runner:
    """The training runs of one algorithm; each call of :meth:`action` trains once and keeps the figures."""

    def __init__(self, comm, settings: dict, algorithm: str, spe: int, directory, label: str = "overlap"):
        self.comm, self.settings, self.algorithm, self.spe, self.label = comm, settings, algorithm, spe, label
        self.directory = directory  # rank 0's temporary folder for the metrics files, None elsewhere
        self.runs = []

    def warm_up(self) -> None:
        from ..train import run as train

        if self.settings["warmup_epochs"]:
            train(run_config(self.settings, self.algorithm, epochs=self.settings["warmup_epochs"]),
                  comm=self.comm)

    def action(self) -> None:
        from ..train import run as train

        index = len(self.runs)
        path = metrics_path(self.directory, self.algorithm, index)
        config = run_config(self.settings, self.algorithm, epochs=self.settings["epochs"], metrics=path,
                              log_every=self.spe)
        summary = train(config, comm=self.comm)
        timeline = split_timeline(path, config.target_accuracy) if path else None
        timeline = self.comm.bcast(timeline, root=0)  # rank 0's timeline, the same figures everywhere
        steps = summary["steps"]
        self.runs.append({
            "iter_s": timeline["train_s"] / steps,
            "wall_per_iter_s": summary["wall_s"] / steps,
            **timeline,
            "steps": steps,
            "wall_s": summary["wall_s"],
            "comm_wait_s": summary["comm_wait_s"],
            "comm_progress_s": summary["comm_progress_s"],
            "bytes_sent": summary["bytes_sent"],
            "final_accuracy": summary["final_accuracy"],
            "time_to_accuracy_s": summary["time_to_accuracy_s"],
        })
        progress(self.comm, f"{self.label} {self.algorithm} run {index + 1}: "
                            f"{1e3 * self.runs[-1]['iter_s']:.2f} ms/iter, accuracy {summary['final_accuracy']:.3f}, "
                            + (f"time to {config.target_accuracy:g} {_seconds(summary['time_to_accuracy_s'])}, "
                               if config.target_accuracy is not None else "")
                            + f"blocked {summary['comm_wait_s']:.3f} s")


def _seconds(value) -> str:
    return "not reached" if value is None else f"{value:.2f} s"


def summarize_runs(runs: list, job_seconds: list) -> dict:
    for run, seconds in zip(runs, job_seconds):
        run["job_s"] = seconds  # whole run with setup, slowest rank (timing.job_time)
    entry = {figure: median_or_none([run[figure] for run in runs]) for figure in FIGURES}
    entry["steps"] = runs[0]["steps"]
    entry["reached_target"] = sum(run["time_to_accuracy_s"] is not None for run in runs)
    entry["blocked_fraction"] = entry["comm_wait_s"] / entry["train_s"] if entry["train_s"] else None
    entry["runs"] = runs
    return entry


def overlap_bound(local: dict, period: int) -> dict:
    """What perfect overlap would give, estimated from Local SGD's run of the same job.

    Local SGD blocks for every average (``steps / period`` of them, plus the
    one of ``finish()``), so its time per step without that blocking is the
    compute of a step, and its blocked time per average the cost of one
    all-reduce. CoCoD at best takes ``max(compute, all-reduce / period)``
    per iteration."""
    averages = local["steps"] / period + 1
    compute = max(local["iter_s"] - local["comm_wait_s"] / local["steps"], 0.0)
    average = local["comm_wait_s"] / averages
    return {"compute_s_per_step": compute, "allreduce_s": average,
            "bound_s_per_iter": max(compute, average / period)}


def ratios_of(results: dict, period: int) -> dict:
    """Time of sync (local) over time of cocod: above 1, cocod is faster; cocod over its bound."""
    cocod = results["cocod"]
    ratios = {
        f"{kind}_{other}_over_cocod": over(results[other][figure], cocod[figure])
        for kind, figure in (("iter", "iter_s"), ("tta", "time_to_accuracy_s"))
        for other in ("sync", "local")
    }
    if "local" in results:
        ratios["iter_cocod_over_bound"] = over(cocod["iter_s"], overlap_bound(results["local"], period)["bound_s_per_iter"])
    return ratios


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)
    spe = steps_per_epoch(settings, comm.Get_size())
    keep = settings["metrics_dir"]
    directory = None
    if comm.Get_rank() == 0:  # rank 0 writes the metrics; iter_s comes from its step records
        directory = keep or tempfile.mkdtemp(prefix="mpisgd-bench-overlap-")
    try:
        runners = {name: Runner(comm, settings, name, spe, directory) for name in settings["algorithms"]}
        for runner in runners.values():
            runner.warm_up()
        samples = interleave(comm, {name: runner.action for name, runner in runners.items()},
                             rounds=settings["repeats"], warmup=0)
    finally:
        if directory and not keep:
            shutil.rmtree(directory, ignore_errors=True)
    results = {name: summarize_runs(runners[name].runs, samples[name]) for name in settings["algorithms"]}
    ratios = ratios_of(results, settings["period"])
    results["cocod"]["overlap_bound"] = overlap_bound(results["local"], settings["period"])
    shown = ", ".join(f"{key} {'n/a' if value is None else f'{value:.3f}'}" for key, value in ratios.items())
    progress(comm, f"overlap ratios (above 1: cocod faster): {shown}")
    config = {
        **settings,
        "ranks": comm.Get_size(),
        "steps_per_epoch": spe,
        "order": "interleaved, alternating (sync local cocod, cocod local sync, ...); medians over repeats",
        "iter_s": "rank 0's time in training steps / steps, without evaluations and the final finish()",
        "time_to_accuracy_s": "the loop's wall time to the first evaluation >= target (evaluations included)",
    }
    return config, results, ratios
