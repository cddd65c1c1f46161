"""AsyVRSC speedup: time to a relative gap of 1e-8 against the number of workers, and the delays.

Every variant runs in the same MPI job, one after the other, on the first
ranks of the world (the others wait, backing off, in a non-blocking
barrier), ``--repeats`` times interleaved, and the report keeps the median:

``csvrg``                      sequential compositional SVRG on rank 0 (the twin).
``distributed-W``              AsyVRSC-Distributed, master (rank 0) and W workers (ranks 1..W): W + 1 ranks.
``shared-W``                   AsyVRSC-Shared on W ranks, when registered (else skipped, with a note).

Each run stops at the first epoch end whose relative gap
(f - f*) / (f(x0) - f*) is at most ``--target-gap``; ``time_to_gap_s`` is
the solver's own time to that epoch end (gap evaluations left out), and
``delays`` the distribution of the applied updates' delays (count, mean,
p50, p95, max). The default problem is a synthetic portfolio large enough
that one estimate (inner mini-batch A = 256 rows of N = 1000 assets, about
2 ms) dominates a request/reply (well under 1 ms).

Ratios: ``speedup_distributed_2_workers`` = time with 1 worker / time with 2
workers (goal 1.8 on a 2-core machine: the master is a third process and
must sleep while it waits), ``speedup_distributed_3_workers`` and ``_4_``
(informative, oversubscribed), ``speedup_shared_2_workers`` (null when
asyvrsc-shared is not registered) and ``csvrg_over_distributed_1_worker``
(what the messaging costs one worker).
"""

import statistics
from pathlib import Path

import numpy as np

from ..errors import UsageError
from . import report
from .timing import together

SUMMARY = "AsyVRSC-Distributed/Shared with 1..4 workers against sequential compositional SVRG: time to gap 1e-8"
GOALS = {}  # the goal (speedup_distributed_2_workers >= 1.8) is stated in config and docs/benchmarks.md
DEFAULTS = {"problem": "portfolio:synthetic:N=1000,n=2000,seed=0,lam=200", "eta": 2e-4, "inner_steps": 400,
            "batch": 256, "epochs": 12, "repeats": 3}
QUICK = {"problem": "portfolio:synthetic:N=20,n=200,seed=0,lam=1", "eta": 0.0, "inner_steps": 0, "batch": 0,
         "epochs": 30, "repeats": 1}


def add_arguments(parser) -> None:
    for key, kind, text in (("problem", str, "composition problem spec"), ("eta", float, "step size; 0: the "
                            "problem's default"), ("inner_steps", int, "K"), ("batch", int, "A"),
                            ("epochs", int, "epochs at most per run"), ("repeats", int, "runs per variant")):
        parser.add_argument("--" + key.replace("_", "-"), type=kind, help=f"{text} (default {DEFAULTS[key]})")
    parser.add_argument("--target-gap", type=float, default=1e-8, help="relative gap to reach (default 1e-8)")
    parser.add_argument("--max-delay", type=int, default=0, help="asyvrsc-distributed's delay bound tau "
                                                                  "(default 0: p - 1)")
    parser.add_argument("--metrics-dir", default=None, help="write each variant's first run's gap records "
                                                             "(optimize's JSONL, for `mpisgd report`) here")
    parser.add_argument("--max-workers", type=int, default=4, help="largest worker count (default 4; at most "
                                                                     "ranks - 1)")


def resolve_settings(args) -> dict:
    base = QUICK if args.quick else DEFAULTS
    settings = {key: getattr(args, key) if getattr(args, key) is not None else base[key] for key in DEFAULTS}
    settings.update(target_gap=args.target_gap, max_workers=args.max_workers, max_delay=args.max_delay,
                    metrics_dir=args.metrics_dir)
    if settings["repeats"] < 1 or settings["epochs"] < 1 or settings["max_workers"] < 1 or args.max_delay < 0:
        raise UsageError("--repeats, --epochs and --max-workers must be at least 1, --max-delay at least 0")
    if not 0 < settings["target_gap"] < 1:
        raise UsageError(f"--target-gap must be in (0, 1), got {settings['target_gap']}")
    return settings


def _write_metrics(path, name, problem, solver, settings) -> None:
    """The run's records as ``mpisgd optimize --metrics`` writes them (rank 0 of the run)."""
    from types import SimpleNamespace

    from ..optimize.records import Records

    args = SimpleNamespace(metrics=str(path), algorithm=name, quiet=True, progress=False,
                           problem=settings["problem"], epochs=settings["epochs"], target_gap=settings["target_gap"])
    Records(args, problem, rank=0, world_size=1).summary(solver)


def _one_run(comm, name, ranks, settings, metrics=None):
    """Solver ``name`` on world ranks 0..ranks-1 (the others wait); the figures on rank 0, else None.
    ``metrics``: a JSONL path for this run's records (written by rank 0)."""
    from ..comm.mpi import MPI
    from ..masterworker.problems import get_problem
    from ..optimize.records import delay_summary
    from ..optimize.solvers import accepted, build

    inside = comm.Get_rank() < ranks
    part = comm.Split(0 if inside else MPI.UNDEFINED, comm.Get_rank())
    result = None
    if inside:
        problem = get_problem(settings["problem"])
        x = problem.x0.copy()
        values = {"eta": settings["eta"], "inner_steps": settings["inner_steps"], "batch": settings["batch"],
                  "epochs": settings["epochs"], "seed": 0, "stop_gap": settings["target_gap"],
                  "max_delay": settings["max_delay"]}
        taken = accepted(name)  # the sequential twin runs every epoch; only the distributed solver has tau
        solver = build(name, x, problem, part, **{k: v for k, v in values.items() if k in taken})
        history = solver.run()
        if metrics is not None and comm.Get_rank() == 0:
            _write_metrics(metrics, name, problem, solver, settings)
        solver.close()
        part.Free()
        first = history[0].gap
        reached = next((r for r in history if r.gap <= settings["target_gap"] * first), None)
        result = {"time_to_gap_s": reached.time_s if reached else None,
                  "epochs_to_gap": reached.epoch if reached else None,
                  "final_relative_gap": history[-1].gap / first, "updates": history[-1].step,
                  "delays": delay_summary(solver.delays), "dropped": solver.dropped,
                  "schedule": {"eta": solver.schedule.eta, "K": solver.schedule.K, "A": solver.schedule.A}}
    together(comm)
    return result


def _median(runs: list) -> dict:
    times = [r["time_to_gap_s"] for r in runs]
    median = statistics.median(times) if all(t is not None for t in times) else None
    return {**runs[-1], "time_to_gap_s": median, "time_to_gap_runs_s": times}


def _speedup(results, kind, workers):
    one, more = results.get(f"{kind}-1"), results.get(f"{kind}-{workers}")
    if not one or not more or not one["time_to_gap_s"] or not more["time_to_gap_s"]:
        return None
    return one["time_to_gap_s"] / more["time_to_gap_s"]


def run(comm, args):
    from ..algorithm import ALGORITHMS
    from ..masterworker.problems import get_problem

    settings = resolve_settings(args)
    size = comm.Get_size()
    workers = list(range(1, min(settings["max_workers"], size - 1) + 1))
    variants = [("csvrg", "csvrg", 1)] + [(f"distributed-{w}", "asyvrsc-distributed", w + 1) for w in workers]
    shared = "asyvrsc-shared" in ALGORITHMS
    if shared:
        variants += [(f"shared-{w}", "asyvrsc-shared", w) for w in range(1, min(settings["max_workers"], size) + 1)]
    problem = get_problem(settings["problem"])
    runs = {label: [] for label, _, _ in variants}
    for repeat in range(settings["repeats"]):
        for label, name, ranks in (variants if repeat % 2 == 0 else variants[::-1]):
            report.progress(comm, f"asyvrsc: {label} (repeat {repeat + 1}/{settings['repeats']})")
            metrics = None
            if settings["metrics_dir"] and repeat == 0:
                metrics = Path(settings["metrics_dir"]) / f"{label}-0.jsonl"
                metrics.parent.mkdir(parents=True, exist_ok=True)
            outcome = _one_run(comm, name, ranks, settings, metrics)
            if comm.Get_rank() == 0:
                runs[label].append(outcome)
    results = {label: _median(outcome) for label, outcome in runs.items()} if comm.Get_rank() == 0 else {}
    ratios = {f"speedup_distributed_{w}_workers": _speedup(results, "distributed", w) for w in (2, 3, 4)}
    ratios["speedup_shared_2_workers"] = _speedup(results, "shared", 2)
    twin, one = results.get("csvrg"), results.get("distributed-1")
    ratios["csvrg_over_distributed_1_worker"] = (twin["time_to_gap_s"] / one["time_to_gap_s"]
                                                 if twin and one and twin["time_to_gap_s"] and one["time_to_gap_s"]
                                                 else None)
    config = {**settings, "world_size": size, "workers": workers, "goal": {"speedup_distributed_2_workers": 1.8},
              "problem_size": {"N": problem.dim, "m": problem.m, "n": problem.n, "returns_mb":
                               round(np.asarray(getattr(problem, "returns", np.zeros(0))).nbytes / 1e6, 1)},
              "notes": [] if shared else ["asyvrsc-shared is not registered in this tree: skipped"]}
    return config, results, ratios
