"""``python -m mpisgd train ...`` (also the ``mpisgd`` console script); ``report`` plots metrics files.

Runs under ``mpiexec -n N`` / ``srun`` for any N >= 1. Errors in what the
user asked for end every rank with one short message and exit status 2; an
unexpected exception on any rank aborts the whole job (status 1).
"""

import argparse
import logging
import os
import sys

from . import ALGORITHMS
from .comm import install_abort_hook
from .comm.mpi import MPI
from .errors import AgreementError, UsageError
from .report import add_report_command, report_main
from .train import DATASETS, MODELS, TrainConfig, run

# Launchers announce the world size they started; a mismatch with MPI's
# world means mpi4py loaded another MPI than the launcher's.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS", "MPI_LOCALNRANKS")


class Parser(argparse.ArgumentParser):
    """argparse that reports errors once (rank 0) and exits 2 on every rank."""

    def error(self, message):
        if _world_rank() == 0:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _world_rank() -> int:
    """This process's rank in COMM_WORLD; 0 where no MPI library can be loaded (``--help`` works there)."""
    try:
        return MPI.COMM_WORLD.Get_rank()
    except ImportError:
        return 0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except the ``None`` of flags whose default depends on the algorithm."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def _algorithm_flags() -> dict:
    """Every algorithm option as one flag; shared names (``--period``) list each default.

    Per-rank options (one value per rank) are for the Python API only."""
    flags = {}
    for name in sorted(ALGORITHMS):
        for option_name, option in ALGORITHMS[name].options.items():
            if option.per_rank:
                continue
            flags.setdefault(option_name, (option, []))[1].append((name, option.default))
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mpisgd", description="Distributed and decentralized SGD on MPI.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train = commands.add_parser("train", help="train a model with one algorithm",
                                formatter_class=HelpFormatter,
                                description="Train with one algorithm; launch with mpiexec -n N.")
    d = TrainConfig()
    add = train.add_argument
    add("--algorithm", default=d.algorithm, choices=sorted(ALGORITHMS), help="distributed algorithm")
    add("--model", default=d.model, choices=list(MODELS), help="model")
    add("--dataset", default=d.dataset, choices=list(DATASETS), help="dataset (all offline)")
    add("--epochs", type=int, default=d.epochs, help="passes over the training data")
    add("--batch-size", type=int, default=d.batch_size, help="mini-batch size per rank")
    add("--lr", type=float, default=d.lr, help="learning rate")
    add("--momentum", type=float, default=d.momentum, help="momentum of the local SGD optimizer")
    add("--weight-decay", type=float, default=d.weight_decay, help="weight decay of the local optimizer")
    add("--nesterov", action="store_true", help="Nesterov momentum in the local optimizer (EAMSGD with easgd)")
    add("--seed", type=int, default=d.seed, help="one seed; rank r derives its streams from (seed, r)")
    add("--partition", default=d.partition, help="iid or dirichlet:ALPHA (non-IID)")
    add("--hidden", type=int, default=d.hidden, help="hidden width (mlp, cnn) or factor rank (mf)")
    add("--dtype", default=d.dtype, choices=["float32", "float64"], help="parameter and data precision")
    add("--device", default=d.device, choices=["auto", "cpu", "cuda"], help="auto: a GPU per rank when present")
    add("--threads", type=int, default=d.threads, help="torch threads per rank")
    add("--time-budget", type=float, default=None,
        help="stop training after this many seconds (asynchronous algorithms: checked every step; "
             "the others: at evaluations)")
    slow = train.add_argument_group("stragglers (experiments)")
    slow.add_argument("--slow-ranks", default="", help="straggler ranks, e.g. 3 or 1,3")
    slow.add_argument("--slow-factor", type=float, default=d.slow_factor,
                      help="the stragglers' local steps take this many times longer")
    slow.add_argument("--slow-link-mbps", type=float, default=None,
                      help="the stragglers' emulated uplink in Mbit/s (asynchronous algorithms)")
    out = train.add_argument_group("output")
    out.add_argument("--metrics", default=None, help="append JSONL metrics to this file (rank 0)")
    out.add_argument("--eval-every", type=int, default=d.eval_every, help="evaluate every N epochs")
    out.add_argument("--log-every", type=int, default=d.log_every, help="record a step event every N steps (0: off)")
    out.add_argument("--target-accuracy", type=float, default=None, help="record the time to reach this accuracy")
    out.add_argument("--stop-at-target", action="store_true", help="stop once --target-accuracy is reached")
    out.add_argument("--quiet", action="store_true", help="print nothing but errors")
    out.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                     help="level of the rank-prefixed log messages on stderr")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar on rank 0 (default: when stderr is a terminal)")
    data = train.add_argument_group("data sizes (synthetic datasets)")
    for flag, default, text in [("samples", 20000, "samples or ratings"), ("features", 64, "features"),
                                ("classes", 10, "classes"), ("users", 300, "users"), ("items", 400, "items")]:
        data.add_argument(f"--{flag}", type=int, default=None, help=f"number of {text} (default {default})")
    algo = train.add_argument_group("algorithm options (each algorithm's default in brackets; see docs/algorithms.md)")
    for option_name, (option, owners) in _algorithm_flags().items():
        defaults = ", ".join(f"{name}: {default}" for name, default in owners)
        kwargs = {"action": argparse.BooleanOptionalAction} if option.type is bool else {"type": option.type}
        if option.type is not bool:
            kwargs["metavar"] = option_name.split("_")[-1].upper()
        algo.add_argument(f"--{option_name.replace('_', '-')}", dest=f"option_{option_name}", default=None,
                          help=f"{option.help} [{defaults}]", **kwargs)
    add_report_command(commands)
    return parser


def config_from_args(args) -> TrainConfig:
    options = {}
    for option_name in _algorithm_flags():
        value = getattr(args, f"option_{option_name}")
        if value is None:
            continue
        if option_name not in ALGORITHMS[args.algorithm].options:
            raise UsageError(f"--{option_name.replace('_', '-')} does not apply to algorithm {args.algorithm!r}")
        options[option_name] = value
    sizes = {k: getattr(args, k) for k in ("samples", "features", "classes", "users", "items")
             if getattr(args, k) is not None}
    fields = {k: getattr(args, k) for k in (
        "algorithm", "model", "dataset", "epochs", "batch_size", "lr", "momentum", "weight_decay", "nesterov", "seed",
        "partition", "hidden", "dtype", "device", "threads", "time_budget", "slow_ranks", "slow_factor",
        "slow_link_mbps", "metrics", "eval_every", "log_every",
        "target_accuracy", "stop_at_target", "quiet", "progress")}
    return TrainConfig(**fields, data_options=sizes, algorithm_options=options)


def check_launch() -> None:
    """A launcher that started N processes but an MPI world of 1: wrong libmpi."""
    size = MPI.COMM_WORLD.Get_size()
    for variable in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 1 and size == 1:
            raise UsageError(
                f"the launcher started {value} processes ({variable}) but MPI reports a world of 1: "
                "mpi4py loaded a different MPI library than the launcher's (see docs/install.md)"
            )


def main(argv=None) -> int:
    install_abort_hook()
    args = build_parser().parse_args(argv)
    if args.command == "report":  # reads files: no launcher, no collectives
        return report_main(args)
    rank = MPI.COMM_WORLD.Get_rank()
    logging.basicConfig(level=args.log_level.upper(), format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
    try:
        check_launch()
        run(config_from_args(args))
    except (UsageError, AgreementError) as error:
        if MPI.COMM_WORLD.Get_rank() == 0 or isinstance(error, AgreementError):
            sys.stderr.write(f"mpisgd: error: {error}\n")
        return 2
    return 0
