"""Differentially private training: the four clipping rules side by side at several ε, and Opacus.

1. **Accuracy against ε.** On digits with ``--ranks`` ranks (default 4),
   ``sync`` with the mlp, every run is ``mpisgd.train.run(TrainConfig(...))``
   with ``--dp RULE --dp-epsilon ε --dp-delta δ``: the noise multiplier σ is
   planned (on rank 0, by the ``--accountant``) so that the planned steps
   (epochs x steps per epoch, Poisson sampling at q = batch x ranks / n)
   spend at most ε. For each ε of ``--epsilons`` (default 1, 3, 8; δ =
   1e-5) and each rule of ``--rules`` (dpsgd: constant clipping, nsgd,
   autos: Auto-S, psac: DP-PSAC; r = ``--dp-r`` for the last three, 0.01 as
   in the paper) the same hyperparameters (C, lr, momentum, epochs, batch)
   train ``--seeds`` times: seed s sets the model and data seed AND
   ``dp_seed`` = s (the Poisson batches and the noise), so every run is
   reproducible (such a run is NOT private in deployment: the seed is known).
   A non-private run (no ``--dp``, same settings) per seed is the reference.
   Each row: test accuracy after training, ε spent, σ, q, wall time; the
   aggregated table: mean and sample standard deviation over the seeds.

   **The paper's claim** (DP-PSAC matches or beats Auto-S and NSGD) per ε:
   the paired differences d_s = acc(psac, s) - acc(other, s) over the seeds
   (same seed: same initial model, batches and noise stream), their mean and
   standard error se = sd / sqrt(n). Verdict: ``psac better`` when mean >
   2 se, ``psac worse`` when mean < -2 se, otherwise ``inside the noise``
   (one seed: ``one seed: no verdict``).

2. **Against Opacus on one rank.** :func:`mpisgd.bench.dp_speed.compare`:
   mpisgd's DP-SGD step (the harness's PrivateStep) against Opacus's
   (GradSampleModule + DPOptimizer) and a plain step on the same Poisson
   batches, with the same model, σ (the one planned for the middle ε), C,
   q (batch = batch x ranks on one rank), lr and epochs. Rank 0 runs it
   alone; the other ranks wait in :func:`.timing.together` (an Ibarrier
   polled with a sleeping back-off), so no rank spins on a core rank 0
   needs. Ratios ``steps_mpisgd_over_opacus`` (goal at least 1.0) and
   ``dp_over_plain_mpisgd`` (a DP step's cost in plain steps), per model.
"""

import math
import statistics
import time
import warnings

from ..errors import UsageError
from .report import progress
from .training import picker, add_partition_argument, partition_of
from .timing import together

SUMMARY = "DP-SGD, NSGD, Auto-S and DP-PSAC at several epsilons (accuracy, epsilon spent, verdicts); Opacus speed"
GOALS = {"steps_mpisgd_over_opacus": 1.0}
RANKS = 4
RULES = ("dpsgd", "nsgd", "autos", "psac")
DEFAULTS = {"epsilons": "1,3,8", "rules": ",".join(RULES), "seeds": 5, "epochs": 20,
            "compare_models": "mlp,cnn"}
QUICK = {"epsilons": "3", "rules": "dpsgd,psac", "seeds": 1, "epochs": 2, "compare_models": "mlp"}
DP = {"batch_size": 32, "lr": 0.5, "momentum": 0.0, "clip": 1.0, "r": 0.01, "delta": 1e-5}
VERDICT_SE = 2.0  # a difference beyond this many standard errors of the paired differences counts


def add_arguments(parser) -> None:
    parser.set_defaults(ranks=RANKS)
    parser.add_argument("--epsilons", help=f"target epsilons, comma-separated (default {DEFAULTS['epsilons']}; "
                        f"--quick {QUICK['epsilons']})")
    parser.add_argument("--rules", help=f"clipping rules (default {DEFAULTS['rules']}; --quick {QUICK['rules']})")
    parser.add_argument("--seeds", type=int, help=f"seeds per rule and epsilon: --seed, --seed+1, ... (default "
                        f"{DEFAULTS['seeds']}; --quick {QUICK['seeds']})")
    parser.add_argument("--epochs", type=int, help=f"epochs of every run (default {DEFAULTS['epochs']}; "
                        f"--quick {QUICK['epochs']})")
    parser.add_argument("--model", default="mlp", help="model of the rule comparison (default mlp)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden width (default 64)")
    parser.add_argument("--batch-size", type=int, default=DP["batch_size"],
                        help=f"samples per rank and step, expected (default {DP['batch_size']})")
    parser.add_argument("--lr", type=float, default=DP["lr"], help=f"learning rate (default {DP['lr']})")
    parser.add_argument("--momentum", type=float, default=DP["momentum"],
                        help=f"momentum (default {DP['momentum']})")
    parser.add_argument("--dp-clip", type=float, default=DP["clip"], help=f"C (default {DP['clip']})")
    parser.add_argument("--dp-r", type=float, default=DP["r"], help=f"r of nsgd, autos, psac (default {DP['r']})")
    parser.add_argument("--dp-delta", type=float, default=DP["delta"], help=f"delta (default {DP['delta']:g})")
    parser.add_argument("--accountant", default="rdp", help="rdp, pld or rdp-dpa (default rdp)")
    parser.add_argument("--compare-models", help=f"models of the Opacus comparison, '' for none (default "
                        f"{DEFAULTS['compare_models']}; --quick {QUICK['compare_models']})")
    parser.add_argument("--metrics-dir", metavar="DIR", help="keep every run's metrics in DIR/eps<E>/<rule>-<seed>"
                        ".jsonl (and DIR/nonprivate-<seed>.jsonl), for python -m mpisgd report")
    add_partition_argument(parser)


def _numbers(text: str, flag: str) -> list:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise UsageError(f"{flag} needs positive numbers, got {text!r}")
    return values


def resolve_settings(args) -> dict:
    pick = picker(args, DEFAULTS, QUICK)

    rules = [r.strip() for r in pick("rules").split(",") if r.strip()]
    unknown = [r for r in rules if r not in RULES]
    if unknown or not rules:
        raise UsageError(f"--rules: unknown rule(s) {', '.join(unknown) or '(none)'}; known: {', '.join(RULES)}")
    models = [m.strip() for m in pick("compare_models").split(",") if m.strip()]
    settings = {"epsilons": _numbers(pick("epsilons"), "--epsilons"), "rules": rules, "seeds": pick("seeds"),
                "epochs": pick("epochs"), "model": args.model, "dataset": "digits", "hidden": args.hidden,
                "algorithm": "sync", "batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum,
                "dp_clip": args.dp_clip, "dp_r": args.dp_r, "dp_delta": args.dp_delta,
                "accountant": args.accountant, "seed": args.seed, "threads": args.threads,
                "compare_models": models, "quick": args.quick, "metrics_dir": args.metrics_dir,
                "partition": partition_of(args)}
    if settings["seeds"] < 1 or settings["epochs"] < 1 or args.batch_size < 1 or args.hidden < 1:
        raise UsageError("--seeds, --epochs, --batch-size and --hidden must be at least 1")
    if args.lr <= 0 or args.dp_clip <= 0 or args.dp_r <= 0 or not 0 <= args.momentum < 1:
        raise UsageError("--lr, --dp-clip and --dp-r must be positive and --momentum in [0, 1)")
    return settings


def config_of(settings: dict, seed: int, rule=None, epsilon=None, metrics=None):
    """The TrainConfig of one run: non-private when ``rule`` is None."""
    from ..train import TrainConfig

    private = {} if rule is None else {
        "dp": rule, "dp_clip": settings["dp_clip"], "dp_r": None if rule == "dpsgd" else settings["dp_r"],
        "dp_epsilon": epsilon, "dp_delta": settings["dp_delta"], "accountant": settings["accountant"],
        "dp_seed": seed}
    return TrainConfig(algorithm=settings["algorithm"], model=settings["model"], dataset=settings["dataset"],
                       hidden=settings["hidden"], batch_size=settings["batch_size"], lr=settings["lr"],
                       momentum=settings["momentum"], epochs=settings["epochs"], seed=seed,
                       threads=settings["threads"], quiet=True, progress=False, metrics=metrics,
                       partition=settings["partition"], **private)


def _metrics(comm, settings: dict, name: str, folder=None):
    import os

    directory = settings["metrics_dir"]
    if not directory or comm.Get_rank() != 0:
        return None
    directory = os.path.join(directory, folder) if folder else directory
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{name}.jsonl")


def train_once(comm, settings: dict, seed: int, rule=None, epsilon=None) -> dict:
    """One run; its row of the results."""
    from ..privacy.noise import SeededNoiseWarning
    from ..train import run as train

    folder = None if rule is None else f"eps{epsilon:g}"
    path = _metrics(comm, settings, f"{rule or 'nonprivate'}-{seed}", folder)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeededNoiseWarning)  # dp_seed = seed on purpose: said in the config
        summary = train(config_of(settings, seed, rule, epsilon, path), comm=comm)
    return {"epsilon_target": epsilon, "rule": rule or "non-private", "seed": seed,
            "accuracy": summary["final_accuracy"], "epsilon_spent": summary.get("epsilon_spent"),
            "noise_multiplier": summary.get("noise_multiplier"), "sample_rate": summary.get("sample_rate"),
            "steps": summary["steps"], "wall_s": time.perf_counter() - start}


def _mean_std(values: list):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(rows: list) -> list:
    """One row per (ε, rule): accuracy mean and sample standard deviation over the seeds, ε spent (max)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["epsilon_target"], row["rule"]), []).append(row)
    table = []
    for (epsilon, rule), runs in groups.items():
        mean, std = _mean_std([r["accuracy"] for r in runs])
        spent = [r["epsilon_spent"] for r in runs if r["epsilon_spent"] is not None]
        table.append({"epsilon_target": epsilon, "rule": rule, "seeds": len(runs), "accuracy_mean": mean,
                      "accuracy_std": std, "epsilon_spent": max(spent) if spent else None,
                      "noise_multiplier": runs[0]["noise_multiplier"], "sample_rate": runs[0]["sample_rate"],
                      "steps": runs[0]["steps"], "wall_s_mean": statistics.fmean(r["wall_s"] for r in runs)})
    return table


def verdicts(rows: list, epsilons: list, rules: list) -> list:
    """Per ε and rule other than psac: the paired differences psac - other over seeds, and the verdict."""
    found = []
    if "psac" not in rules:
        return found
    accuracy = {(r["epsilon_target"], r["rule"], r["seed"]): r["accuracy"] for r in rows}
    for epsilon in epsilons:
        for other in [r for r in rules if r != "psac"]:
            seeds = sorted(s for (e, rule, s) in accuracy if e == epsilon and rule == other)
            diffs = [accuracy[(epsilon, "psac", s)] - accuracy[(epsilon, other, s)] for s in seeds]
            mean, std = _mean_std(diffs)
            se = None if std is None else std / math.sqrt(len(diffs))
            if se is None:
                verdict = "one seed: no verdict"
            elif mean > VERDICT_SE * se:
                verdict = "psac better"
            elif mean < -VERDICT_SE * se:
                verdict = "psac worse"
            else:
                verdict = "inside the noise"
            found.append({"epsilon_target": epsilon, "versus": other, "seeds": len(diffs), "mean_difference": mean,
                          "std_difference": std, "standard_error": se, "verdict": verdict})
    return found


def opacus_comparison(comm, settings: dict, sigma: float) -> dict:
    """:func:`.dp_speed.compare` per model on rank 0 alone; the others wait sleeping; every rank gets it."""
    comparisons = None
    if comm.Get_rank() == 0:
        from .dp_speed import compare

        comparisons = {}
        for model in settings["compare_models"]:
            comparisons[model] = compare(model, settings["batch_size"] * comm.Get_size(), seed=settings["seed"],
                                         epochs=settings["epochs"], sigma=sigma, clip=settings["dp_clip"],
                                         lr=settings["lr"], hidden=settings["hidden"], threads=settings["threads"],
                                         quick=settings["quick"])
            progress(comm, f"privacy opacus {model}: mpisgd/opacus steps/s "
                           f"{comparisons[model]['steps_mpisgd_over_opacus']:.2f}, DP over plain "
                           f"{comparisons[model]['dp_over_plain_mpisgd']:.2f}")
    together(comm)  # the others sleep in an Ibarrier polled with a back-off meanwhile
    return comm.bcast(comparisons, root=0)


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)
    config_of(settings, 0, settings["rules"][0], settings["epsilons"][0]).validate()
    seeds = [settings["seed"] + i for i in range(settings["seeds"])]
    rows = []
    for seed in seeds:  # seed-major: a slow stretch of the machine touches every rule alike
        rows.append(train_once(comm, settings, seed))
        for epsilon in settings["epsilons"]:
            for rule in settings["rules"]:
                rows.append(train_once(comm, settings, seed, rule, epsilon))
                progress(comm, f"privacy seed {seed} eps {epsilon:g} {rule}: accuracy {rows[-1]['accuracy']:.3f}, "
                               f"eps spent {rows[-1]['epsilon_spent']:.3f}, sigma {rows[-1]['noise_multiplier']:.3f}")
    table = aggregate(rows)
    checks = verdicts(rows, settings["epsilons"], settings["rules"])
    middle = settings["epsilons"][len(settings["epsilons"]) // 2]
    sigma = next(r["noise_multiplier"] for r in rows if r["epsilon_target"] == middle)
    comparisons = opacus_comparison(comm, settings, sigma) if settings["compare_models"] else {}
    results = {"runs": rows, "table": table, "claim": checks, "opacus": comparisons}
    ratios = {key: {model: c[key] for model, c in comparisons.items()}
              for key in ("steps_mpisgd_over_opacus", "dp_over_plain_mpisgd")}
    for other in ("autos", "nsgd", "dpsgd"):
        found = {f"eps={c['epsilon_target']:g}": 100 * c["mean_difference"] for c in checks if c["versus"] == other}
        if found:
            ratios[f"accuracy_psac_minus_{other}"] = found  # points
    config = {
        **{k: v for k, v in settings.items() if k != "metrics_dir"}, "ranks": comm.Get_size(),
        "seeds_used": seeds,
        "seeding": "seed s: the model and data seed AND dp_seed = s (Poisson batches and noise): reproducible "
                   "runs, NOT private in deployment (a known seed)",
        "sampling": "Poisson, q = batch_size x ranks / n_train; noise N(0, sigma^2 C^2 / p) on each of the p ranks",
        "verdict_rule": f"paired differences psac - other over seeds: 'psac better' if mean > {VERDICT_SE:g} standard "
                        f"errors, 'psac worse' if mean < -{VERDICT_SE:g} standard errors, else 'inside the noise'",
        "opacus": f"one rank, batch {settings['batch_size'] * comm.Get_size()} (the same q), sigma {sigma:.4g} (the "
                  f"one planned for eps {middle:g}), C, lr and epochs of the runs; the other ranks sleep meanwhile",
        "ratios_units": "steps_mpisgd_over_opacus: above 1 mpisgd faster (goal >= 1.0); dp_over_plain_mpisgd: "
                        "plain steps per DP step; accuracy_psac_minus_*: points",
    }
    return config, results, ratios
