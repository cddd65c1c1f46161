"""Run a benchmark under MPI: re-launch under ``mpiexec`` when typed in a plain shell.

``python -m mpisgd.bench ...`` started outside any MPI launcher sees a world
of size 1. When more ranks are wanted, it starts itself again as::

    mpiexec -n RANKS python -m mpi4py -m mpisgd.bench ARGS... --ranks RANKS

(``python -m mpi4py`` makes one failing rank abort the whole job instead of
leaving the others blocked), waits for it under a hard timeout, and kills
the whole process group when the timeout expires. The inner run checks that
``COMM_WORLD`` really has ``RANKS`` processes: a launcher that belongs to
another MPI library than the one mpi4py loaded silently gives ``RANKS``
worlds of size 1 instead.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import UsageError

DEFAULT_RANKS = 4
LAUNCHED_ENV = "MPISGD_BENCH_LAUNCHED"  # set in the re-launched job: never re-launch again
COMMAND_ENV = "MPISGD_BENCH_COMMAND"  # the command the user typed, for the report
LAUNCHER_ENV = "MPISGD_BENCH_LAUNCHER"  # the mpiexec command line we ran, for the report
# Environment variables by which common launchers announce the world size.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
_RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


def launcher_size():
    """World size announced by an MPI launcher in the environment, or None outside one."""
    for name in _SIZE_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    if any(name in os.environ for name in _RANK_VARS):
        return 0  # under a launcher that does not say the size
    return None


def plan(requested, world_size: int):
    """Decide how to run: ``("relaunch", ranks)`` or ``("run", expected_world_size)``.

    We run in place when already under MPI (started by us, or by a launcher
    the environment reveals, or a world larger than 1); then the world must
    have ``requested`` ranks (or, without ``--ranks``, what the launcher
    announced). A plain shell with ``--ranks`` > 1 re-launches.
    """
    announced = launcher_size()
    if os.environ.get(LAUNCHED_ENV) == "1" or announced is not None or world_size > 1:
        return "run", requested or announced or world_size
    ranks = requested or DEFAULT_RANKS
    return ("relaunch", ranks) if ranks > 1 else ("run", 1)


def check_world(world_size: int, expected: int, library: str) -> None:
    """Refuse to benchmark a world of the wrong size (launcher/library mismatch)."""
    if world_size == expected:
        return
    message = f"asked for {expected} MPI ranks but MPI.COMM_WORLD has {world_size}"
    if world_size == 1:
        library = " ".join(library.split())
        raise UsageError(
            f"{message}: the launcher that started this job probably belongs to another MPI library "
            f"than the one mpi4py loaded ({library}). Use that library's own mpiexec (--mpiexec or "
            "MPIEXEC), or point mpi4py at the launcher's library with MPI4PY_LIBMPI."
        )
    raise UsageError(f"{message}: give the launcher's -n and --ranks the same value (or leave out --ranks)")


def find_mpiexec(option=None) -> list:
    """The launcher command: ``--mpiexec``, then ``$MPIEXEC``, then the one next to python, then PATH.

    ``--mpiexec``/``MPIEXEC`` may carry flags, e.g.
    ``"mpiexec --oversubscribe --allow-run-as-root"`` for Open MPI as root.
    """
    text = option or os.environ.get("MPIEXEC")
    if text:
        command = shlex.split(text)
        if not command or shutil.which(command[0]) is None:
            raise UsageError(f"launcher {text!r} (from --mpiexec or MPIEXEC) is not an executable")
        return command
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mpiexec")
    if found is None:
        raise UsageError(
            "no mpiexec next to this python or on PATH: pass --mpiexec, set MPIEXEC, "
            "or start the benchmark under your MPI launcher yourself"
        )
    return [found]


def typed_command(argv) -> str:
    """The command as the user typed it (recorded in the report)."""
    return os.environ.get(COMMAND_ENV) or shlex.join(["python", "-m", "mpisgd.bench", *argv])


def plain_launch(launcher: list, job: list, ranks: int) -> list:
    """``launcher -n ranks job...``: every rank on this machine."""
    return [*launcher, "-n", str(ranks), *job]


def relaunch(argv, *, ranks: int, launcher: list, timeout: float, threads: int, place=None) -> int:
    """Run ``argv`` again under ``launcher -n ranks``; return its exit status (124 on timeout).

    ``place(launcher, job)``, when given, builds the launcher line instead
    (e.g. one rank per emulated host, :mod:`.emulated`)."""
    job = [sys.executable, "-m", "mpi4py", "-m", "mpisgd.bench", *argv, "--ranks", str(ranks)]
    command = place(launcher, job) if place else plain_launch(launcher, job, ranks)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env[LAUNCHED_ENV] = "1"
    env[COMMAND_ENV] = typed_command(argv)
    env[LAUNCHER_ENV] = shlex.join(command)
    try:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as error:
        raise UsageError(f"cannot start {shlex.join(command)}: {error}") from None
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        sys.stderr.write(f"mpisgd.bench: timed out after {timeout:g} s, job killed: {shlex.join(command)}\n")
        return 124
    except KeyboardInterrupt:
        kill_group(process)
        return 130
    except BaseException:  # SystemExit from SIGTERM (emulated cluster): never leave the job behind
        kill_group(process)
        raise


def kill_group(process) -> None:
    """Kill the launcher and every rank it started (they share its new session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
