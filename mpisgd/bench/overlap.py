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

from ..errors import UsageError
from .training import (add_target_and_repeats, add_training_arguments, compare, metrics_folder, over,
                       timed_runners, training_settings)

SUMMARY = "sync, local and cocod trained side by side: time per iteration, blocked time, time to accuracy"
GOALS = {}  # informative: no speed-up of cocod is expected where communication is nearly free
ALGORITHMS = ("sync", "local", "cocod")
DEFAULTS = {"epochs": 20, "repeats": 5, "warmup_epochs": 1, "target_accuracy": 0.93}
QUICK = {"epochs": 2, "repeats": 2, "warmup_epochs": 1, "target_accuracy": 0.5}


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
    # rank 0 writes the metrics; iter_s comes from its step records
    with metrics_folder(comm, settings["metrics_dir"], "mpisgd-bench-overlap-") as directory:
        runners = timed_runners(comm, settings, directory, "overlap")
        for runner in runners.values():
            runner.warm_up(settings["warmup_epochs"])
        results, ratios = compare(comm, runners, settings["repeats"], lambda r: ratios_of(r, settings["period"]),
                                  "overlap ratios (above 1: cocod faster)")
    results["cocod"]["overlap_bound"] = overlap_bound(results["local"], settings["period"])
    config = {
        **settings,
        "ranks": comm.Get_size(),
        "steps_per_epoch": runners["sync"].timeline_every,
        "order": "interleaved, alternating (sync local cocod, cocod local sync, ...); medians over repeats",
        "iter_s": "rank 0's time in training steps / steps, without evaluations and the final finish()",
        "time_to_accuracy_s": "the loop's wall time to the first evaluation >= target (evaluations included)",
    }
    return config, results, ratios
