"""Cost against work: time per iteration and bytes per rank against model size.

For each ``--sizes`` (parameters; default 1e4, 1e5, 1e6, 1e7) the ``mlp``
gets the hidden width that gives about that many parameters on the data set
(``h^2 + (features + classes + 2) h + classes``), and ``sync``, ``local``,
``cocod`` and ``divshare`` each train ``--epochs`` (default 1) in the real
training loop, interleaved (:func:`.timing.interleave`), after one untimed
warm-up run per algorithm at the smallest size. Figures per size and
algorithm (medians over ``--repeats``):

``iter_s``          rank 0's training time per iteration, without the
                    evaluations (from the loop's metrics records, as in
                    ``overlap``);
``bytes_per_step``  bytes sent per rank and step (mean over ranks);
``comm_wait_s``     time blocked in communication (mean over ranks).

Ratios per size: ``iter_sync_over_<algorithm>`` and
``bytes_sync_over_<algorithm>`` (above 1: cheaper than sync). No goal: the
figures show where each algorithm's cost starts to grow with the model, and
mean most on the emulated cluster (``--network 1gbit,1ms``).
"""

import math
import os

from ..errors import UsageError
from .report import progress
from .training import (add_training_arguments, metrics_folder, over, run_interleaved, timed_runners,
                       training_settings)

SUMMARY = "sync, local, cocod and divshare against model size: time per iteration and bytes per rank"
GOALS = {}
ALGORITHMS = ("sync", "local", "cocod", "divshare")
DEFAULTS = {"sizes": "1e4,1e5,1e6,1e7", "epochs": 1, "repeats": 1}
QUICK = {"sizes": "1e3,1e4", "epochs": 1, "repeats": 1}


def add_arguments(parser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--sizes", help=f"model sizes in parameters (default {DEFAULTS['sizes']}; "
                        f"--quick {QUICK['sizes']}); they set the mlp's hidden width (--hidden is ignored)")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS),
                        help=f"algorithms to compare, sync first (default {','.join(ALGORITHMS)})")
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default {DEFAULTS['epochs']})")
    parser.add_argument("--period", type=int, default=4, help="local steps between averages (local, cocod)")
    parser.add_argument("--repeats", type=int, help=f"timed runs per algorithm and size (default {DEFAULTS['repeats']})")


def hidden_for(parameters: float, features: int, classes: int) -> int:
    """The mlp hidden width whose parameter count is closest to ``parameters``."""
    b = features + classes + 2
    return max(1, round((-b + math.sqrt(b * b + 4 * max(0.0, parameters - classes))) / 2))


def mlp_parameters(hidden: int, features: int, classes: int) -> int:
    return hidden * hidden + (features + classes + 2) * hidden + classes


def resolve_settings(args) -> dict:
    base = QUICK if args.quick else DEFAULTS
    if args.model != "mlp":
        raise UsageError("scaling sets the mlp's hidden width from --sizes: --model must be mlp")
    try:
        sizes = [float(s) for s in (args.sizes or base["sizes"]).split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--sizes must be numbers separated by commas, got {args.sizes!r}") from None
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if not sizes or min(sizes) < 1:
        raise UsageError("--sizes needs at least one size, each at least 1")
    if not algorithms or algorithms[0] != "sync" or len(set(algorithms)) != len(algorithms):
        raise UsageError("--algorithms must list distinct algorithms, sync first (the ratios are over sync)")
    from ..algorithm import ALGORITHMS as REGISTRY

    unknown = [a for a in algorithms if a not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown algorithm(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}")
    settings = {**training_settings(args), "sizes": sizes, "algorithms": algorithms,
                "epochs": args.epochs or base["epochs"], "repeats": args.repeats or base["repeats"],
                "period": args.period, "target_accuracy": None, "warmup_epochs": 1}
    if min(settings["epochs"], settings["repeats"], settings["period"]) < 1:
        raise UsageError("--epochs, --repeats and --period must be at least 1")
    return settings


def measure(comm, settings: dict, size: float, directory, warm: bool) -> dict:
    """Every algorithm at one model size; returns algorithm -> figures."""
    from ..train import load_dataset

    info = load_dataset(settings["dataset"], seed=settings["seed"]).info
    hidden = hidden_for(size, info.n_features, info.n_classes)
    folder = os.path.join(directory, f"parameters-{size:g}") if directory else None
    runners = timed_runners(comm, {**settings, "hidden": hidden}, folder, "scaling")
    if warm:
        for runner in runners.values():
            runner.warm_up(settings["warmup_epochs"])
    parameters = mlp_parameters(hidden, info.n_features, info.n_classes)
    entry = {"size": size, "hidden": hidden, "parameters": parameters}
    for name, figures in run_interleaved(comm, runners, settings["repeats"]).items():
        figures["bytes_per_step"] = figures["bytes_sent"] / figures["steps"]
        entry[name] = figures
        progress(comm, f"scaling {parameters:.3g} parameters, {name}: {1e3 * figures['iter_s']:.2f} ms/iter, "
                       f"{figures['bytes_per_step'] / 1e6:.3f} MB/step/rank")
    return entry


def run(comm, args):
    settings = resolve_settings(args)
    with metrics_folder(comm, settings["metrics_dir"], "mpisgd-bench-scaling-") as directory:
        results = [measure(comm, settings, size, directory, warm=index == 0)
                   for index, size in enumerate(settings["sizes"])]
    ratios = {}
    for entry in results:
        label = f"{entry['parameters']:.3g}"
        for name in settings["algorithms"][1:]:
            for kind, figure in (("iter", "iter_s"), ("bytes", "bytes_per_step")):
                ratios.setdefault(f"{kind}_sync_over_{name}", {})[label] = over(entry["sync"][figure],
                                                                                  entry[name][figure])
    config = {**settings, "ranks": comm.Get_size(),
              "iter_s": "rank 0's time in training steps / steps, without evaluations (as overlap)",
              "order": "per size: algorithms interleaved, alternating; medians over repeats"}
    return config, results, ratios
