"""Command line: ``python -m mpisgd.bench BENCHMARK [--json PATH] [--ranks N] ...`` (BENCHMARK_NAMES).

Typed in a plain shell it re-launches itself under ``mpiexec -n RANKS``
(see :mod:`.launch`); under an MPI launcher it runs the benchmark, and rank
0 prints the JSON report to stdout and writes it to ``--json``.
"""

import argparse
import importlib
import sys

from ..comm import MPISGDError, install_abort_hook
from . import BENCHMARK_NAMES, emulated
from .launch import DEFAULT_RANKS, check_world, find_mpiexec, plan, relaunch

BENCHMARKS = {name: importlib.import_module(f".{name}", __package__) for name in BENCHMARK_NAMES}


def add_common_arguments(parser) -> None:
    """The options every benchmark takes, added to each one's own parser (not shared through ``parents``:
    argparse shares a parent's actions, so one benchmark's ``set_defaults(ranks=...)`` would change the
    default of all)."""
    group = parser.add_argument_group("common options")
    group.add_argument("--json", metavar="PATH", help="also write the JSON report to PATH (rank 0)")
    group.add_argument("--ranks", type=int, help=f"MPI ranks (default {DEFAULT_RANKS}, or the size of the "
                       "world the launcher started)")
    group.add_argument("--mpiexec", help="launcher command used to re-launch, flags allowed "
                       "(default: $MPIEXEC, the mpiexec next to python, then PATH)")
    group.add_argument("--timeout", type=float, default=900.0,
                       help="kill the re-launched job after this many seconds (default 900)")
    group.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per rank (default 1)")
    group.add_argument("--quick", action="store_true", help="tiny sizes and few repetitions (smoke test)")
    group.add_argument("--seed", type=int, default=0, help="seed of the models and data (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mpisgd.bench",
        description="Benchmarks of mpisgd against hand-written MPI code; see docs/benchmarks.md.",
    )
    subparsers = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        sub = subparsers.add_parser(name, help=module.SUMMARY, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common_arguments(sub)
        module.add_arguments(sub)
    return parser


def run_inside(args, argv, comm) -> None:
    """Run the benchmark in this MPI job; rank 0 reports."""
    import torch

    from . import report

    torch.set_num_threads(args.threads)  # more threads than cores per rank is 4-5x slower here
    module = BENCHMARKS[args.benchmark]
    machine = report.machine_info(comm, args.threads)
    config, results, ratios = module.run(comm, args)
    if hasattr(args, "network"):
        config = {**config, "emulated_cluster": emulated.spec_in_job()}
    document = report.make_report(args.benchmark, argv=argv, machine=machine, config=config,
                                  results=results, ratios=ratios, goals=module.GOALS)
    if comm.Get_rank() == 0:
        report.emit(document, args.json)
    comm.Barrier()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ranks is not None and args.ranks < 1:
        parser.error("--ranks must be at least 1")
    if args.threads < 1 or args.timeout <= 0:
        parser.error("--threads and --timeout must be positive")

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    try:
        how, ranks = plan(args.ranks, comm.Get_size())
        if emulated.wanted(args):
            emulated.spec_of(args, ranks)  # bad --network/--straggler values fail before anything else
        BENCHMARKS[args.benchmark].resolve_settings(args)  # bad options fail here, before any launch
        if how == "relaunch":
            def again(place=None):
                return relaunch(argv, ranks=ranks, launcher=find_mpiexec(args.mpiexec), timeout=args.timeout,
                                threads=args.threads, place=place)

            return emulated.relaunch_on_cluster(args, ranks, again) if emulated.wanted(args) else again()
        emulated.check_inside(args)
        check_world(comm.Get_size(), ranks, MPI.Get_library_version().strip().splitlines()[0])
        install_abort_hook()  # a rank that fails ends the job, even without python -m mpi4py
        run_inside(args, argv, comm)
    except MPISGDError as error:  # usage and agreement errors: a message, not a traceback
        sys.stderr.write(f"python -m mpisgd.bench: error: {error}\n")
        sys.stderr.flush()
        if comm.Get_size() > 1:
            comm.Abort(2)  # the other ranks may wait in a collective
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
