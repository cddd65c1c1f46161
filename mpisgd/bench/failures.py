"""Master-worker EASGD against stragglers and failures: two comparisons, side by side in one job.

Every run is ``mpisgd.train.run(TrainConfig(...))``, the loop of ``python
-m mpisgd train``, with the same model, data, seed, batch size, learning
rate, ``--period`` (tau) and ``--moving-rate`` (beta), under one
``--time-budget`` (every rank stops on its own; ``--epochs`` is large).
The job has R ranks (``--ranks``, default 5 here): p = R - 1 workers.

1. **A straggler: asynchronous against synchronous EASGD.** ``easgd`` (the
   collective one, :mod:`mpisgd.collective.easgd`) on world ranks 0..p-1
   (rank R-1 waits, sleeping) against ``easgd-async`` on all R ranks: rank 0
   serves the center, ranks 1..p are the workers. Both have p workers; the
   asynchronous one has one rank (one host) more, its server. The straggler
   is a worker in both: on the emulated cluster the ``--straggler`` host
   (``--network 1gbit,1ms --straggler 3:100mbit,5ms``, as root; it must be
   one of hosts 1..p-1), otherwise ``--slow-ranks`` (default R-2) whose
   local steps take ``--slow-factor`` (default 4) times longer, a compute
   straggler (``straggler_emulation`` says which). ``time_to_accuracy_s``:
   the loop's wall time to the first evaluation at or above
   ``--target-accuracy``; for ``easgd`` every epoch, of each worker's own
   x^i (summed over the test-set slices: the mean worker), for
   ``easgd-async`` rank 0's evaluation of the center x~ while it serves,
   every epoch's worth of worker steps (:mod:`mpisgd.train.serving`; its
   time is the server's, spent in no reply). Ratio ``tta_sync_over_async``
   (goal: at least 1.5; above 1: the asynchronous center gets there sooner).
2. **A silent worker: dynamic weighting against plain.** ``easgd-dw``
   (server-driven synchronous EASGD with a ``--deadline`` per period) on all
   R ranks, worker ``--silent-rank`` (default R-1) falling silent at its
   local step ``--silent-at`` (``--fail RANK:silent@STEP``) and counted lost
   after ``--worker-timeout`` seconds, with the dynamic weights
   (``easgd-dw``, [reconstructed] rule: a silent worker weighs 0) and with
   ``weighting=plain`` (``easgd-dw-plain``: w_i = 1 for every worker's last
   report, the frozen one's included: plain EASGD, ALGORITHMS.md §4.2/§4.4).
   That pair differs in the weights alone (same server, deadline and
   messages), which is what the comparison is about; ``easgd-async`` with
   the same silent worker (``easgd-async-silent``, informative) shows the
   asynchronous protocol, in which a silent worker merely stops
   contributing. ``final_accuracy`` is the center's, after the run. Ratios
   ``accuracy_dw_minus_plain`` and ``accuracy_dw_minus_async`` in points
   (goal: above 0). No stall: each run's ``wall_s``, and the server's
   ``periods`` (closed) and ``closed_by_deadline``.

The variants train ``--repeats`` times each, interleaved in alternating
order, after one untimed 1-epoch ``easgd-async`` run; the report keeps the
medians (a run that missed the target counts as slowest) and every run.
"""

import dataclasses

from ..errors import UsageError
from . import emulated
from .emulated import wanted as on_cluster
from .timing import together
from .training import (picker, TrainRunner, add_target_and_repeats, add_training_arguments, compare, over,
                       train_config, training_settings, warm_up)

SUMMARY = ("async vs sync EASGD with a straggler (time to accuracy); dynamic weighting vs plain with a "
           "silent worker (final accuracy)")
GOALS = {}  # scalar ratios: the goals are in config["goals"] and docs/benchmarks.md
RANKS = 5  # p = 4 workers and the asynchronous variants' server
DEFAULTS = {"time_budget": 20.0, "repeats": 3, "target_accuracy": 0.9, "epochs": 1000, "silent_at": 24,
            "deadline": 0.25, "worker_timeout": 3.0}
QUICK = {"time_budget": 2.0, "repeats": 1, "target_accuracy": 0.5, "epochs": 1000, "silent_at": 8,
         "deadline": 0.2, "worker_timeout": 2.0}
GOAL_VALUES = {"tta_sync_over_async": ("at least", 1.5), "accuracy_dw_minus_plain": ("above", 0.0)}


def add_arguments(parser) -> None:
    parser.set_defaults(ranks=RANKS)
    add_training_arguments(parser)
    add_target_and_repeats(parser, DEFAULTS, QUICK, "variant")
    parser.add_argument("--time-budget", type=float, help=f"seconds of training per run (default "
                        f"{DEFAULTS['time_budget']:g}; --quick {QUICK['time_budget']:g})")
    parser.add_argument("--period", type=int, default=4, help="tau, local steps between exchanges (default 4)")
    parser.add_argument("--moving-rate", type=float, default=0.9, help="beta; alpha = beta / p (default 0.9)")
    straggler = parser.add_argument_group("the straggler (comparison 1; without --straggler)")
    straggler.add_argument("--slow-ranks", help="compute straggler ranks, among 1..R-2 (default R-2)")
    straggler.add_argument("--slow-factor", type=float, help="their local steps take this many times longer "
                                                             "(default 4; with --straggler 1)")
    silent = parser.add_argument_group("the silent worker (comparison 2)")
    silent.add_argument("--silent-rank", type=int, help="the worker that falls silent (default R-1)")
    silent.add_argument("--silent-at", type=int, help=f"its local step at which it does (default "
                        f"{DEFAULTS['silent_at']}; --quick {QUICK['silent_at']})")
    silent.add_argument("--deadline", type=float, help=f"easgd-dw's deadline per period, s (default "
                        f"{DEFAULTS['deadline']:g})")
    silent.add_argument("--worker-timeout", type=float, help=f"seconds of silence after which a worker is lost "
                        f"(the algorithms' timeout; default {DEFAULTS['worker_timeout']:g})")


def resolve_settings(args) -> dict:
    pick = picker(args, DEFAULTS, QUICK)
    base = QUICK if args.quick else DEFAULTS

    settings = {
        **training_settings(args), "epochs": base["epochs"], "target_accuracy": pick("target_accuracy"),
        "repeats": pick("repeats"), "time_budget": pick("time_budget"), "period": args.period,
        "moving_rate": args.moving_rate,
        "slow_ranks": args.slow_ranks or (emulated.straggler_ranks(args, args.ranks) if args.ranks else None),
        "slow_factor": args.slow_factor if args.slow_factor is not None else (1.0 if slow_links(args) else 4.0),
        "silent_rank": args.silent_rank, "silent_at": pick("silent_at"), "deadline": pick("deadline"),
        "worker_timeout": pick("worker_timeout"),
    }
    if min(settings["repeats"], settings["period"], settings["silent_at"]) < 1:
        raise UsageError("--repeats, --period and --silent-at must be at least 1")
    if settings["time_budget"] <= 0 or not 0 < settings["moving_rate"] < 1 or settings["slow_factor"] < 1:
        raise UsageError("--time-budget must be positive, --moving-rate in (0, 1) and --slow-factor at least 1")
    if not 0 < settings["deadline"] < settings["worker_timeout"]:
        raise UsageError("--deadline must be positive and shorter than --worker-timeout")
    if not 0 < settings["target_accuracy"] <= 1:
        raise UsageError(f"--target-accuracy must be in (0, 1], got {settings['target_accuracy']}")
    check_ranks(settings, args.ranks)
    if on_cluster(args) and settings["slow_factor"] == 1 and not slow_links(args):
        raise UsageError("--network without --straggler has no straggler: add --straggler HOST:RATE,DELAY "
                         "(or --stragglers, or --slow-factor)")
    return settings


def slow_links(args) -> bool:
    """Whether the emulated cluster gives some hosts a slower link (``--straggler``/``--stragglers``)."""
    return bool(args.straggler or args.stragglers)


def check_ranks(settings: dict, size: int) -> None:
    """Fill in the default ranks; UsageError unless the straggler and the silent worker are workers."""
    from ..train.config import rank_list  # torch is imported inside the functions (a quick re-launch)

    if size < 3:
        raise UsageError(f"the failures benchmark needs at least 3 ranks (a server and 2 workers), got {size}")
    if settings["slow_ranks"] is None:
        settings["slow_ranks"] = str(size - 2)
    if settings["silent_rank"] is None:
        settings["silent_rank"] = size - 1
    slow = rank_list(settings["slow_ranks"])
    if not slow or not set(slow) <= set(range(1, size - 1)):
        raise UsageError(f"the straggler ({settings['slow_ranks']}) must be among ranks 1..{size - 2}: a worker "
                         "of both easgd (ranks 0..R-2) and easgd-async (ranks 1..R-1)")
    if not 1 <= settings["silent_rank"] < size:
        raise UsageError(f"--silent-rank must be a worker, 1..{size - 1}")


def straggler_config(settings: dict, algorithm: str):
    options = {"period": settings["period"], "moving_rate": settings["moving_rate"]}
    if algorithm != "easgd":
        options.update(servers=1, timeout=settings["worker_timeout"])
    slow = settings["slow_factor"] > 1
    return train_config(settings, algorithm, epochs=settings["epochs"], time_budget=settings["time_budget"],
                        slow_ranks=settings["slow_ranks"] if slow else "",
                        slow_factor=settings["slow_factor"], algorithm_options=options)


def silent_config(settings: dict, algorithm: str, weighting=None):
    options = {"period": settings["period"], "moving_rate": settings["moving_rate"], "servers": 1,
               "timeout": settings["worker_timeout"]}
    if weighting:
        options.update(deadline=settings["deadline"], weighting=weighting)
    return train_config(settings, algorithm, epochs=settings["epochs"], time_budget=settings["time_budget"],
                        fail=f"{settings['silent_rank']}:silent@{settings['silent_at']}", algorithm_options=options)


def server_figures(summary: dict) -> dict:
    """What the (first) server saw: workers lost, contributions applied, periods closed (easgd-dw)."""
    report = (summary.get("server_reports") or [{}])[0]
    return {"lost_workers": len(summary.get("lost", {})), "center_updates": report.get("exchanges"),
            "periods": report.get("periods"), "closed_by_deadline": report.get("closed_by_deadline"),
            "late_reports": report.get("late")}


class FirstRanks:
    """A :class:`TrainRunner` on world ranks 0..ranks-1 (the others wait, sleeping); every rank keeps rank
    0's figures."""

    def __init__(self, world, ranks: int, make_runner):
        from ..comm.mpi import MPI

        self.world, inside = world, world.Get_rank() < ranks
        self.comm = world.Split(0 if inside else MPI.UNDEFINED, world.Get_rank())
        self.runner = make_runner(self.comm) if inside else None
        self.runs = []

    def action(self) -> None:
        if self.runner is not None:
            self.runner.action()
        together(self.world)
        self.runs.append(self.world.bcast(self.runner.runs[-1] if self.world.Get_rank() == 0 else None, root=0))

    def free(self) -> None:
        if self.runner is not None:
            self.comm.Free()


def points(a, b):
    """(a - b) in percentage points, None when either is missing."""
    return None if a is None or b is None else 100.0 * (a - b)


def ratios_of(results: dict) -> dict:
    dw = results["easgd-dw"]["final_accuracy"]
    return {"tta_sync_over_async": over(results["easgd"]["time_to_accuracy_s"],
                                        results["easgd-async"]["time_to_accuracy_s"]),
            "accuracy_dw_minus_plain": points(dw, results["easgd-dw-plain"]["final_accuracy"]),
            "accuracy_dw_minus_async": points(dw, results["easgd-async-silent"]["final_accuracy"])}


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)  # the world has args.ranks ranks (checked before)
    size = comm.Get_size()
    p = size - 1
    silent_config(settings, "easgd-dw", "dynamic").validate()
    warm_up(comm, dataclasses.replace(straggler_config(settings, "easgd-async"), epochs=1, time_budget=None,
                                      slow_ranks="", slow_factor=1.0))
    label, directory = "failures", settings["metrics_dir"]

    def runner(name, make, on=comm):
        return TrainRunner(on, name, make, label, directory, extra=server_figures)

    sync = FirstRanks(comm, p, lambda sub: runner("easgd", lambda: straggler_config(settings, "easgd"), sub))
    runners = {
        "easgd": sync,
        "easgd-async": runner("easgd-async", lambda: straggler_config(settings, "easgd-async")),
        "easgd-dw": runner("easgd-dw", lambda: silent_config(settings, "easgd-dw", "dynamic")),
        "easgd-dw-plain": runner("easgd-dw-plain", lambda: silent_config(settings, "easgd-dw", "plain")),
        "easgd-async-silent": runner("easgd-async-silent", lambda: silent_config(settings, "easgd-async")),
    }
    try:
        results, ratios = compare(comm, runners, settings["repeats"], ratios_of,
                                  "failures ratios (tta: above 1, async sooner; accuracy: points, above 0 dw better)")
    finally:
        sync.free()
    on_slow_links = slow_links(args)
    config = {
        **settings,
        "ranks": size, "workers": p,
        "layout": {"easgd": f"ranks 0..{p - 1}, all workers (rank {p} waits)",
                   "easgd-async, easgd-dw, easgd-dw-plain, easgd-async-silent":
                       f"rank 0 the server (one host more), ranks 1..{p} the workers"},
        "straggler_emulation": (f"emulated cluster: host(s) {settings['slow_ranks']} on the --straggler link"
                                if on_slow_links else f"compute: rank(s) {settings['slow_ranks']} take "
                                f"{settings['slow_factor']:g}x longer per local step (no emulated network)")
                               + ("" if not on_slow_links or settings["slow_factor"] == 1
                                  else f", and {settings['slow_factor']:g}x longer local steps"),
        "silent_worker": f"rank {settings['silent_rank']} falls silent at its local step {settings['silent_at']} "
                         f"(lost after {settings['worker_timeout']:g} s); on the emulated cluster the straggler "
                         "host's slow link is there in these runs too",
        "time_to_accuracy_s": "easgd: evaluations of the workers' own models every epoch (mean worker); "
                              "master-worker: rank 0's evaluations of the center while serving, every epoch's "
                              "worth of worker steps",
        "goals": {key: f"{direction} {value:g}" for key, (direction, value) in GOAL_VALUES.items()},
        "order": "interleaved, alternating; medians over repeats (a run that missed the target counts as slowest)",
    }
    return config, results, ratios
