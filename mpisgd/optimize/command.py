"""The ``optimize`` subcommand: one solver on one composition problem, under ``mpiexec -n N``.

``python -m mpisgd optimize --algorithm asyvrsc-distributed --problem portfolio:pricing --metrics run.jsonl``

Errors in what the user asked for (unknown solver or problem, bad step size,
a sequential twin on several ranks, ...) end every rank with one line and
status 2, as ``train`` does.
"""

import argparse
import sys

from ..errors import AgreementError, UsageError

def add_optimize_command(commands, formatter_class=argparse.ArgumentDefaultsHelpFormatter) -> None:
    """Add ``optimize`` to the ``mpisgd`` command line's subparsers."""
    parser = commands.add_parser(
        "optimize", help="solve a composition problem min F(G(x)) with AsyVRSC or a sequential twin",
        formatter_class=formatter_class,
        description="Solve a composition problem; launch with mpiexec -n N (asyvrsc-distributed: rank 0 is "
                    "the master, the others are workers; csvrg and scgd: one rank). See docs/algorithms.md.")
    add = parser.add_argument
    add("--algorithm", required=True, metavar="NAME",
        help="asyvrsc-distributed, asyvrsc-shared, csvrg (compositional SVRG) or scgd")
    add("--problem", required=True, metavar="SPEC",
        help="portfolio:pricing, portfolio:crspday, portfolio:synthetic:N=20,n=400,seed=0 or mdp:S=10,...")
    add("--eta", type=float, default=0.0, help="step size (eta); 0: the problem's tuned default")
    add("--inner-steps", type=int, default=0, help="updates per epoch (K); 0: the problem's default")
    add("--batch", type=int, default=0, help="inner mini-batch (A); 0: the problem's default")
    add("--epochs", type=int, default=30, help="epochs at most")
    add("--seed", type=int, default=0, help="seed of the sample streams")
    add("--target-gap", type=float, default=1e-8,
        help="relative gap (f - f*) / (f(x0) - f*) whose first epoch end gives time_to_gap_s")
    add("--stop-at-target", action="store_true", help="stop at the first epoch end at --target-gap "
                                                      "(asynchronous solvers)")
    add("--time-limit", type=float, default=0.0, help="stop at the first epoch end after this many seconds; 0: none")
    add("--max-delay", type=int, default=0, help="asyvrsc-distributed: delay bound tau; 0: p - 1")
    add("--atomic", action="store_true", help="asyvrsc-shared: per-element atomic updates (MPI Accumulate) "
                                              "instead of raw Hogwild writes")
    add("--timeout", type=float, default=120.0, help="longest wait for a peer, in seconds")
    add("--metrics", default=None, metavar="FILE", help="append JSONL metrics to this file (rank 0)")
    add("--quiet", action="store_true", help="print nothing but errors")
    add("--progress", action=argparse.BooleanOptionalAction, default=None,
        help="progress bar on rank 0 (default: when stderr is a terminal)")


def solver_values(args) -> dict:
    """The solver options the flags give (a flag left at its default is not passed, so a solver without
    that option takes it as given; one set for a solver without it is refused by ``build``)."""
    values = {"eta": args.eta, "inner_steps": args.inner_steps, "batch": args.batch, "epochs": args.epochs,
              "seed": args.seed, "stop_gap": args.target_gap if args.stop_at_target else 0.0,
              "time_limit": args.time_limit, "max_delay": args.max_delay, "timeout": args.timeout,
              "atomic": args.atomic}
    defaults = {"eta": 0.0, "inner_steps": 0, "batch": 0, "epochs": 30, "seed": 0, "stop_gap": 0.0,
                "time_limit": 0.0, "max_delay": 0, "timeout": 120.0, "atomic": False}
    return {key: value for key, value in values.items() if key in ("epochs", "seed") or value != defaults[key]}


def optimize(args, comm) -> dict:
    """Run the solver the arguments name on ``comm`` (an mpi4py communicator); the summary on rank 0."""
    from ..masterworker.problems import get_problem
    from .records import Records
    from .solvers import build

    if not args.target_gap > 0:
        raise UsageError(f"--target-gap must be positive, got {args.target_gap}")
    problem = get_problem(args.problem)
    x = problem.x0.copy()
    solver = build(args.algorithm, x, problem, comm, **solver_values(args))
    records = Records(args, problem, rank=comm.Get_rank(), world_size=comm.Get_size())
    solver.on_record = lambda record: records.add(record, solver.delays)
    solver.run()
    solver.close()
    return records.summary(solver)


def optimize_main(args) -> int:
    """``mpisgd optimize``: 0, or 2 after a one-line error on rank 0 (every rank) for bad input."""
    from ..comm.mpi import MPI

    try:
        optimize(args, MPI.COMM_WORLD)
    except (UsageError, AgreementError) as error:
        if MPI.COMM_WORLD.Get_rank() == 0 or isinstance(error, AgreementError):
            sys.stderr.write(f"mpisgd optimize: error: {error}\n")
        return 2
    return 0
