"""Elastic Gossip, Gossiping SGD and sync: accuracy against bytes sent, at the same epochs.

Every run is ``mpisgd.train.run(TrainConfig(...), comm=MPI.COMM_WORLD)``
with the same model, data, seed, batch size, learning rate, ranks and
``--epochs``. Variants:

``sync``                   bucketed gradient all-reduce every step.
``elastic-gossip``         defaults: a gossip every step (``gossip_prob`` 1).
``gossip``                 Gossiping SGD (pull), defaults.
``elastic-gossip-sparse``  ``--gossip-prob`` (default 0.25) and
``gossip-sparse``          ``--gossip-period`` (default 1): fewer gossips,
                           fewer bytes.

After one untimed 1-epoch ``sync`` run that loads the data, they train
``--repeats`` times each, interleaved in alternating order, and
the report keeps medians of ``final_accuracy`` (the averaged model after
``finish()``), ``bytes_sent`` per rank (mean over ranks), ``wall_s``.
Ratios: ``bytes_sync_over_<variant>`` (above 1: the variant sends fewer
bytes than sync) and ``accuracy_<variant>_minus_sync``.
"""

import dataclasses

from ..errors import UsageError
from .training import (picker, TrainRunner, add_target_and_repeats, add_training_arguments, compare, over,
                       train_config, training_settings, warm_up)

SUMMARY = "elastic-gossip, gossip and sync at the same epochs: final accuracy against bytes sent"
GOALS = {}  # informative
DEFAULTS = {"epochs": 10, "repeats": 2, "target_accuracy": 0.93}
QUICK = {"epochs": 2, "repeats": 1, "target_accuracy": 0.5}


def add_arguments(parser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default {DEFAULTS['epochs']}; "
                        f"--quick {QUICK['epochs']})")
    add_target_and_repeats(parser, DEFAULTS, QUICK, "variant")
    parser.add_argument("--gossip-prob", type=float, default=0.25,
                        help="gossip_prob of the sparse variants (default 0.25)")
    parser.add_argument("--gossip-period", type=int, default=1,
                        help="gossip_period of the sparse variants (default 1)")


def resolve_settings(args) -> dict:
    pick = picker(args, DEFAULTS, QUICK)

    sparse = {"gossip_prob": args.gossip_prob, "gossip_period": args.gossip_period}
    settings = {
        "variants": {
            "sync": {"algorithm": "sync", "options": {}},
            "elastic-gossip": {"algorithm": "elastic-gossip", "options": {}},
            "gossip": {"algorithm": "gossip", "options": {}},
            "elastic-gossip-sparse": {"algorithm": "elastic-gossip", "options": dict(sparse)},
            "gossip-sparse": {"algorithm": "gossip", "options": dict(sparse)},
        },
        **training_settings(args), "epochs": pick("epochs"),
        "target_accuracy": pick("target_accuracy"), "repeats": pick("repeats"),
    }
    if min(settings["epochs"], settings["repeats"], settings["batch_size"], args.gossip_period) < 1:
        raise UsageError("--epochs, --repeats, --batch-size and --gossip-period must be at least 1")
    if not 0 <= args.gossip_prob <= 1:
        raise UsageError(f"--gossip-prob must be in [0, 1], got {args.gossip_prob}")
    if settings["lr"] <= 0:
        raise UsageError("--lr must be positive")
    if not 0 < settings["target_accuracy"] <= 1:
        raise UsageError(f"--target-accuracy must be in (0, 1], got {settings['target_accuracy']}")
    return settings


def variant_config(settings: dict, variant: dict):
    return train_config(settings, variant["algorithm"], epochs=settings["epochs"],
                        algorithm_options=dict(variant["options"]))


def _key(name: str) -> str:
    return name.replace("-", "_")


def ratios_of(results: dict) -> dict:
    sync = results["sync"]
    ratios = {}
    for name, entry in results.items():
        if name != "sync":
            ratios[f"bytes_sync_over_{_key(name)}"] = over(sync["bytes_sent"], entry["bytes_sent"])
    for name, entry in results.items():
        if name != "sync":
            ratios[f"accuracy_{_key(name)}_minus_sync"] = entry["final_accuracy"] - sync["final_accuracy"]
    return ratios


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    settings = resolve_settings(args)
    variants = settings["variants"]
    warm_up(comm, dataclasses.replace(variant_config(settings, variants["sync"]), epochs=1))
    runners = {name: TrainRunner(comm, name, lambda v=variant: variant_config(settings, v), "gossip",
                                 settings["metrics_dir"])
               for name, variant in variants.items()}
    results, ratios = compare(comm, runners, settings["repeats"], ratios_of, "gossip ratios")
    for name, entry in results.items():
        entry["algorithm"], entry["options"] = variants[name]["algorithm"], variants[name]["options"]
    config = {
        **settings,
        "ranks": comm.Get_size(),
        "order": "interleaved, alternating; medians over repeats",
        "bytes_sent": "bytes sent per rank by the algorithm (mean over ranks), whole run",
    }
    return config, results, ratios
