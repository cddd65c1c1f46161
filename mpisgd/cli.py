"""``python -m mpisgd train ...`` (also the ``mpisgd`` console script); ``optimize`` solves composition
problems (:mod:`mpisgd.optimize`); ``report`` plots metrics files; ``privacy`` is the privacy calculator.

Runs under ``mpiexec -n N`` / ``srun`` for any N >= 1. Errors in what the
user asked for end every rank with one short message and exit status 2; an
unexpected exception on any rank aborts the whole job (status 1).
"""

import argparse
import logging
import os
import sys
import typing
from dataclasses import fields

from . import ALGORITHMS
from .comm import install_abort_hook
from .comm.mpi import MPI
from .errors import AgreementError, UsageError
from .optimize.command import add_optimize_command, optimize_main
from .privacy.calculator import add_privacy_command, privacy_main
from .report import add_report_command, report_main
from .train import TrainConfig, run
from .train.checkpointing import REQUEUE_STATUS, Preempted
from .train.failures import Departed
from .train.config import OUTPUT, choices_of, flag_of

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
        if getattr(ALGORITHMS[name], "composition", False):
            continue  # a composition solver: its flags are optimize's
        for option_name, option in ALGORITHMS[name].options.items():
            if option.per_rank:
                continue
            flags.setdefault(option_name, (option, []))[1].append((name, option.default))
    return flags


def option_flag(option_name: str) -> str:
    """An algorithm option's flag; ``--algorithm-NAME`` where a training setting has the same name
    (none does today; the rule keeps a future clash from shadowing a training flag)."""
    taken = {spec.name for spec in fields(TrainConfig)}
    return flag_of(f"algorithm_{option_name}" if option_name in taken else option_name)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mpisgd", description="Distributed and decentralized SGD on MPI.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train = commands.add_parser("train", help="train a model with one algorithm",
                                formatter_class=HelpFormatter,
                                description="Train with one algorithm; launch with mpiexec -n N.")
    groups = {None: train}
    for spec in fields(TrainConfig):
        if spec.name == "algorithm_options":
            continue  # its flags come from the algorithms (below)
        group = spec.metadata["group"]
        if group not in groups:
            groups[group] = train.add_argument_group(group)
        _add_field(groups[group], spec)
    groups[OUTPUT].add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                                help="level of the rank-prefixed log messages on stderr")
    algo = train.add_argument_group("algorithm options (each algorithm's default in brackets; see docs/algorithms.md)")
    for option_name, (option, owners) in _algorithm_flags().items():
        defaults = ", ".join(f"{name}: {default}" for name, default in owners)
        kwargs = {"action": argparse.BooleanOptionalAction} if option.type is bool else {"type": option.type}
        if option.type is not bool:
            kwargs["metavar"] = option_name.split("_")[-1].upper()
        algo.add_argument(option_flag(option_name), dest=f"option_{option_name}", default=None,
                          help=f"{option.help} [{defaults}]", **kwargs)
    add_optimize_command(commands, HelpFormatter)
    add_report_command(commands)
    add_privacy_command(commands)
    return parser


def _value_type(spec):
    """``Optional[float]`` -> float: the type of a field's values."""
    present = [t for t in typing.get_args(spec.type) if t is not type(None)]
    return present[0] if typing.get_origin(spec.type) is typing.Union else spec.type


def _add_field(group, spec) -> None:
    """The flag(s) of one TrainConfig field, from its type, default and metadata."""
    meta, kind = spec.metadata, _value_type(spec)
    if meta["keys"]:  # a dict of sizes: one integer flag per key
        for key, (text, shown) in meta["keys"].items():
            group.add_argument(flag_of(key), dest=f"{spec.name}.{key}", type=int, default=None, metavar=key.upper(),
                               help=f"number of {text} (default {shown})")
        return
    kwargs = {"default": spec.default, "help": meta["help"]}
    if kind is bool:
        kwargs["action"] = "store_true" if spec.default is False else argparse.BooleanOptionalAction
    else:
        kwargs["type"] = kind
    if meta["choices"] is not None:
        kwargs["choices"] = choices_of(meta["choices"])
    group.add_argument(flag_of(spec.name), dest=spec.name, **kwargs)


def config_from_args(args) -> TrainConfig:
    options = {}
    for option_name in _algorithm_flags():
        value = getattr(args, f"option_{option_name}")
        if value is None:
            continue
        if option_name not in ALGORITHMS[args.algorithm].options:
            raise UsageError(f"{option_flag(option_name)} does not apply to algorithm {args.algorithm!r}")
        options[option_name] = value
    values = {}
    for spec in fields(TrainConfig):
        if spec.metadata["keys"]:
            given = {key: getattr(args, f"{spec.name}.{key}") for key in spec.metadata["keys"]}
            values[spec.name] = {key: value for key, value in given.items() if value is not None}
        elif spec.name != "algorithm_options":
            values[spec.name] = getattr(args, spec.name)
    return TrainConfig(**values, algorithm_options=options)


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
    if args.command == "privacy":  # arithmetic only: no launcher, no collectives
        return privacy_main(args)
    if getattr(args, "fail", ""):  # read at MPI_Init: a rank that exits early must not wait in MPICH's finalize barrier
        os.environ.setdefault("MPIR_CVAR_NO_COLLECTIVE_FINALIZE", "1")
    rank = MPI.COMM_WORLD.Get_rank()
    logging.basicConfig(level=getattr(args, "log_level", "warning").upper(),
                        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
    try:
        check_launch()
        if args.command == "optimize":
            return optimize_main(args)
        run(config_from_args(args))
    except Departed:  # --fail RANK:exit@STEP: this rank left the run on purpose
        return 0
    except Preempted as stop:  # SIGTERM/SIGUSR1 with --checkpoint-dir: checkpoint written, run again
        if MPI.COMM_WORLD.Get_rank() == 0:
            sys.stderr.write(f"mpisgd: {stop}\n")
        return REQUEUE_STATUS
    except (UsageError, AgreementError) as error:
        if MPI.COMM_WORLD.Get_rank() == 0 or isinstance(error, AgreementError):
            sys.stderr.write(f"mpisgd: error: {error}\n")
        return 2
    return 0
