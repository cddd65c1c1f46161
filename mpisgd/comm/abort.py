"""End the whole MPI job when one rank fails, instead of leaving the others waiting."""

import sys
import traceback

from .mpi import MPI


def install_abort_hook(exit_code: int = 1) -> None:
    """Make an uncaught exception on this rank print its traceback and abort the job.

    Without this (or ``python -m mpi4py``), a failing rank leaves every other
    rank blocked in its next collective forever. Called by the ``mpisgd``
    command line; embedding codes usually run under ``python -m mpi4py``.
    """
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
        else:
            rank = MPI.COMM_WORLD.Get_rank()
            text = "".join(traceback.format_exception(kind, value, tb))
            sys.stderr.write("".join(f"[rank {rank}] {line}\n" for line in text.splitlines()))
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(exit_code)

    sys.excepthook = hook
