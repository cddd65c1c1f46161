"""DivShare, AD-PSGD and Swift with stragglers, under one time budget, in the real training loop.

Every run is ``mpisgd.train.run(TrainConfig(...), comm=MPI.COMM_WORLD)``
with the same model, data, seed, batch size, learning rate and ranks, each
algorithm with its defaults (full topology for divshare and swift; the
bipartite one AD-PSGD needs; DivShare's ``--fragments`` Omega, default 2: the
artifact's chunk_fraction 0.5, fragmentation on, and ``--peers`` J, default
3; lists of either sweep them, one DivShare variant ``divshare-J<J>-O<Omega>``
per pair; H = 1 local step between
sharing rounds: the artifact's example H = 128 at batch 8 on CIFAR-10 would
be 12 epochs of digits per round), and the same straggler settings:

``--slow-ranks 3``        the straggler ranks (default: the emulated cluster's
                          straggler hosts, else the last rank);
``--slow-factor 4``       their local steps take this many times longer;
``--slow-link-mbps 5``    their uplink: a ``mpisgd.comm.Throttle`` plugged
                          into the algorithm's messenger on those ranks
                          (``mpisgd.train.run(..., throttle=...)``; messages
                          leave one at a time, each after its transmission
                          time; 0: none);
``--time-budget 6``       seconds of training: every rank stops on its own
                          when the budget is spent (``--epochs`` is large so
                          that the budget, not the epochs, ends a run).

The variants train ``--repeats`` times each, interleaved in
alternating order (divshare adpsgd swift, swift adpsgd divshare, ...)
after one untimed 1-epoch ``sync`` run that loads the data, and
the report keeps the medians: ``time_to_accuracy_s`` (the loop's wall time
to the first evaluation of rank 0's own model at or above
``--target-accuracy``, or at or below ``--target-rmse`` for ratings;
``null`` when not reached), ``final_accuracy`` (the
averaged model after ``finish()``), ``bytes_sent`` per rank (mean over
ranks), ``delivery`` (mean over ranks of the fraction of the messages
queued for a rank that arrived) and ``staleness_s`` (mean age of the
models or fragments averaged), and each rank's wall time per step. Ratios
``tta_adpsgd_over_<variant>`` and ``tta_swift_over_<variant>`` for each
DivShare variant (above 1: DivShare reaches the target sooner; ``null``
when a target was not reached).

The DivShare paper reports up to 3.9x lower time to accuracy than AD-PSGD
with stragglers on 60 nodes and real links. On one machine the delays are
injected; with ``--network 1gbit,1ms --straggler 3:100mbit,5ms`` (as root)
every rank runs on its own emulated host (:mod:`.emulated`), host 3's link
is the slow one (``--stragglers 0.12:20mbit,5ms``: the last 0.12 of the
hosts), and the injected delays default to none (``--slow-factor 1``,
``--slow-link-mbps 0``; give them to add them).
"""

import dataclasses

from ..errors import UsageError
from . import emulated
from .training import (picker, TrainRunner, add_target_and_repeats, add_training_arguments, compare, over,
                       train_config, training_settings, warm_up)

SUMMARY = "divshare, adpsgd and swift with a straggler under a time budget: time to accuracy, delivery, staleness"
GOALS = {}  # informative: injected delays on one machine, no goal
ALGORITHMS = ("divshare", "adpsgd", "swift")
DEFAULTS = {"time_budget": 6.0, "repeats": 3, "target_accuracy": 0.9, "epochs": 1000}
QUICK = {"time_budget": 1.5, "repeats": 2, "target_accuracy": 0.5, "epochs": 1000}


def add_arguments(parser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--epochs", type=int, help=f"epochs at most (default {DEFAULTS['epochs']}: the time "
                        "budget ends the runs)")
    add_target_and_repeats(parser, DEFAULTS, QUICK, "algorithm")
    parser.add_argument("--fragments", default="2", metavar="OMEGA[,OMEGA...]",
                        help="DivShare's fragments per model, Omega (default 2: the artifact's chunk_fraction "
                             "0.5, fragmentation on; 1 sends whole models); several values: one DivShare per value")
    parser.add_argument("--peers", default="3", metavar="J[,J...]",
                        help="DivShare's random peers per fragment, J (default 3); several values: one DivShare "
                             "per (J, Omega), named divshare-J<J>-O<Omega>")
    parser.add_argument("--target-rmse", type=float,
                        help="ratings (--model mf): time to this test RMSE instead of a target accuracy")
    straggler = parser.add_argument_group("straggler (injected by mpisgd on this machine)")
    straggler.add_argument("--slow-ranks", help="straggler ranks, R[,R...] (default: the last rank)")
    straggler.add_argument("--slow-factor", type=float,
                           help="their local steps take this many times longer (default 4; with --straggler 1)")
    straggler.add_argument("--slow-link-mbps", type=float,
                           help="their uplink, throttled in mpisgd's messenger, Mbit/s (default 5; with "
                                "--straggler 0: the emulated cluster's link is the slow one)")
    straggler.add_argument("--time-budget", type=float, help=f"seconds of training per run (default "
                           f"{DEFAULTS['time_budget']:g}; --quick {QUICK['time_budget']:g})")


def resolve_settings(args) -> dict:
    pick = picker(args, DEFAULTS, QUICK)
    on_cluster = bool(args.straggler or args.stragglers)  # the emulated cluster's slow links are the stragglers
    injected = {"slow_factor": 1.0 if on_cluster else 4.0, "slow_link_mbps": 0.0 if on_cluster else 5.0}

    def injected_or(name):
        value = getattr(args, name)
        return injected[name] if value is None else value

    settings = {
        "algorithms": list(ALGORITHMS),
        **training_settings(args), "epochs": pick("epochs"),
        "target_accuracy": pick("target_accuracy"), "repeats": pick("repeats"),
        "time_budget": pick("time_budget"),
        "slow_ranks": args.slow_ranks,  # None: the emulated stragglers, else the last rank (run())
        "slow_factor": injected_or("slow_factor"), "slow_link_mbps": injected_or("slow_link_mbps"),
        "divshare": divshare_variants(args.peers, args.fragments),
    }
    settings["algorithms"] = [*settings["divshare"], *ALGORITHMS[1:]]
    if args.target_rmse is not None:
        if args.target_rmse <= 0:
            raise UsageError(f"--target-rmse must be positive, got {args.target_rmse}")
        settings["target_rmse"], settings["target_accuracy"] = args.target_rmse, args.target_accuracy
    if min(settings["epochs"], settings["repeats"], settings["batch_size"]) < 1:
        raise UsageError("--epochs, --repeats and --batch-size must be at least 1")
    if settings["lr"] <= 0 or settings["time_budget"] <= 0 or settings["slow_link_mbps"] < 0:
        raise UsageError("--lr and --time-budget must be positive and --slow-link-mbps must not be negative")
    if settings["slow_link_mbps"] == 0:
        settings["slow_link_mbps"] = None  # no emulated link (with --slow-factor 1: a run without straggler)
    if settings["slow_factor"] < 1:
        raise UsageError(f"--slow-factor must be at least 1, got {settings['slow_factor']}")
    if settings["target_accuracy"] is not None and not 0 < settings["target_accuracy"] <= 1:
        raise UsageError(f"--target-accuracy must be in (0, 1], got {settings['target_accuracy']}")
    from ..train.config import rank_list  # torch is imported inside the functions (a quick re-launch)

    if settings["slow_ranks"] is not None and not rank_list(settings["slow_ranks"]):
        raise UsageError("--slow-ranks needs at least one rank")
    return settings


def _values(text: str, flag: str) -> list:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes whole numbers, comma-separated, got {text!r}") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} needs numbers of at least 1, got {text!r}")
    return values


def divshare_variants(peers: str, fragments: str) -> dict:
    """DivShare's (J, Omega) pairs by variant name: ``divshare`` for one pair, ``divshare-J3-O2`` ... for a sweep."""
    pairs = [(j, omega) for j in _values(peers, "--peers") for omega in _values(fragments, "--fragments")]
    if len(pairs) == 1:
        return {"divshare": {"peers": pairs[0][0], "fragments": pairs[0][1]}}
    return {f"divshare-J{j}-O{omega}": {"peers": j, "fragments": omega} for j, omega in pairs}


def algorithm_config(settings: dict, name: str):
    """The run of variant ``name``: an algorithm, or a DivShare variant (its J and Omega)."""
    algorithm = "divshare" if name in settings["divshare"] else name
    return train_config(
        settings, algorithm, epochs=settings["epochs"], time_budget=settings["time_budget"],
        slow_ranks=settings["slow_ranks"], slow_factor=settings["slow_factor"], target_rmse=settings.get("target_rmse"),
        algorithm_options=settings["divshare"].get(algorithm, {}),
    )


def throttle_of(settings: dict, rank: int):
    """This rank's throttle for one run (a function, for TrainRunner): a ``mpisgd.comm.Throttle`` at
    ``--slow-link-mbps`` on the straggler ranks; None elsewhere or without a slow link."""
    from ..train.config import rank_list

    mbps = settings["slow_link_mbps"]
    if mbps is None or rank not in rank_list(settings["slow_ranks"]):
        return None
    from ..comm import Throttle

    return lambda: Throttle(mbps * 1e6 / 8)  # bytes per second


def ratios_of(results: dict) -> dict:
    """Time to accuracy of adpsgd (swift) over each DivShare variant's: above 1, that DivShare is faster."""
    return {f"tta_{other}_over_{name}": over(results[other]["time_to_accuracy_s"], results[name]["time_to_accuracy_s"])
            for name in results if name.startswith("divshare") for other in ("adpsgd", "swift")}


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)
    if settings["slow_ranks"] is None:
        settings["slow_ranks"] = emulated.straggler_ranks(args, comm.Get_size()) or str(comm.Get_size() - 1)
    for name in settings["algorithms"]:
        algorithm_config(settings, name).validate()
    warm_up(comm, dataclasses.replace(algorithm_config(settings, "sync"), epochs=1, time_budget=None, slow_ranks="",
                                      slow_factor=1.0))
    throttle = throttle_of(settings, comm.Get_rank())
    runners = {name: TrainRunner(comm, name, lambda name=name: algorithm_config(settings, name), "stragglers",
                                 settings["metrics_dir"], throttle=throttle)
               for name in settings["algorithms"]}
    results, ratios = compare(comm, runners, settings["repeats"], ratios_of, "stragglers ratios (above 1: divshare reaches the target sooner)")
    config = {
        **settings,
        "ranks": comm.Get_size(),
        "order": "interleaved, alternating (divshare adpsgd swift, swift adpsgd divshare, ...); medians over repeats",
        "time_to_accuracy_s": "the loop's wall time to the first evaluation of rank 0's model >= target",
        "straggler_emulation": ("the emulated cluster's slow links (--straggler/--stragglers), plus "
                                if emulated.wanted(args) else "")
                               + "what mpisgd injects: sleeps (slow_factor) and a throttle in the stragglers' "
                               "messenger (slow_link_mbps)",
    }
    return config, results, ratios
