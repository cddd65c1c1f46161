"""Launch real MPI jobs from pytest: mpiexec in its own process group, hard timeout.

Every launch passes ``MPISGD_TEST_RANKS`` so that programs can check that
the world has the size that was asked for (a launcher/library mismatch would
otherwise give N worlds of size 1 and a silent pass).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGS = Path(__file__).resolve().parent / "progs"
BIN = Path(sys.executable).parent
MPIEXEC = str(BIN / "mpiexec") if (BIN / "mpiexec").exists() else "mpiexec"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    ended: float  # time.time() when the job had exited
    arrivals: list  # (time.time() when it arrived, line) for every output line

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def arrived(self, text: str):
        """When the first output line containing ``text`` arrived (None if never)."""
        return next((when for when, line in self.arrivals if text in line), None)


def _collect(stream, lines: list, arrivals: list) -> None:
    for line in stream:
        lines.append(line)
        arrivals.append((time.time(), line))


def mpiexec(n: int, args, *, timeout: float = 60, env=None, cwd=None) -> Result:
    """Run ``mpiexec -n n python ARGS...``; kill the whole group after ``timeout`` s."""
    return run_command([MPIEXEC, "-n", str(n), sys.executable, *map(str, args)], timeout=timeout,
                       env={"MPISGD_TEST_RANKS": str(n), **(env or {})}, cwd=cwd)


def run_command(command, *, timeout: float = 60, env=None, cwd=None, started=None) -> Result:
    """Run ``command`` in its own session (one thread per rank, unbuffered); kill the group on timeout.

    ``started(process)``, when given, is called once the process runs (e.g. to signal it)."""
    # PYTHONPATH: the jobs import the mpisgd of this tree (a second checkout or worktree tests itself)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=path)
    environment.update(env or {})
    command = [str(part) for part in command]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment, cwd=cwd or ROOT, start_new_session=True,
    )
    out, err, arrivals = [], [], []
    readers = [threading.Thread(target=_collect, args=(stream, lines, arrivals), daemon=True)
               for stream, lines in ((process.stdout, out), (process.stderr, err))]
    for reader in readers:
        reader.start()
    if started is not None:
        started(process)
    try:
        process.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        timed_out = True
    ended = time.time()
    for reader in readers:
        reader.join(timeout=10)
    code = -9 if timed_out else process.returncode
    return Result(code, "".join(out), "".join(err), timed_out, ended, sorted(arrivals))


def mpisgd(n: int, *cli_args, timeout: float = 120, env=None) -> Result:
    """Run the command line ``python -m mpisgd ARGS...`` on ``n`` ranks."""
    return mpiexec(n, ["-m", "mpisgd", *cli_args], timeout=timeout, env=env)


def survivable_mpisgd(n: int, *cli_args, timeout: float = 120) -> Result:
    """``python -m mpisgd ARGS...`` on ``n`` ranks under the launch that survives a rank's death
    (docs/failures.md: MPICH's ``-disable-auto-cleanup``, a shell that ignores SIGUSR1 and turns the
    rank's death by a signal into an exit status, no collective finalize)."""
    import shlex
    command = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "mpisgd", *cli_args])
    return run_command([MPIEXEC, "-disable-auto-cleanup", "-n", str(n), "sh", "-c", f"trap '' USR1; {command}; exit $?"],
                       timeout=timeout, env={"MPISGD_TEST_RANKS": str(n), "MPIR_CVAR_NO_COLLECTIVE_FINALIZE": "1"})


def run_prog(n: int, name: str, *args, timeout: float = 60, env=None) -> Result:
    """Run tests/progs/NAME under ``python -m mpi4py`` (a failing rank aborts the job)."""
    return mpiexec(n, ["-m", "mpi4py", PROGS / name, *args], timeout=timeout, env=env)


def assert_ok(result: Result, expect: str = "OK") -> None:
    assert not result.timed_out, f"timed out\n{result.output[-4000:]}"
    assert result.returncode == 0, f"exit {result.returncode}\n{result.output[-4000:]}"
    assert expect in result.stdout, f"missing {expect!r}\n{result.output[-4000:]}"


def assert_mutation_fails(result: Result, message: str) -> None:
    """A run with the algorithm's communication a no-op (tests/progs/_mutations.py): it must fail, with
    the oracle's ``message``, not hang."""
    assert not result.timed_out, result.output[-3000:]
    assert result.returncode != 0, f"the oracle passed with the communication removed\n{result.output[-3000:]}"
    assert message in result.output, result.output[-3000:]


def top_level_imports(path) -> set:
    """The top-level package names a Python file imports (an oracle must import numpy only)."""
    import ast

    tree = ast.parse(Path(path).read_text())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def assert_fails_fast(result: Result, message: str, within: float = 30.0) -> None:
    """Non-zero exit with ``message`` in the output, and no hang.

    Programs print ``FAILING-AT <time.time()>`` just before the failure they
    provoke; otherwise the moment the message itself arrived counts. The job
    must have ended ``within`` seconds of that moment (start-up time,
    importing torch on a loaded machine, is not counted). A hung job would
    run into the launch's timeout; the bound is loose because a loaded
    2-core machine can take over 10 s to end 4 ranks that exit normally.
    """
    assert not result.timed_out, f"hung\n{result.output[-4000:]}"
    assert result.returncode != 0, f"exit 0\n{result.output[-4000:]}"
    assert message in result.output, f"missing {message!r}\n{result.output[-4000:]}"
    marks = [float(t) for t in re.findall(r"FAILING-AT ([0-9.]+)", result.stdout)]
    failed_at = min(marks) if marks else result.arrived(message)
    assert result.ended - failed_at < within, f"took {result.ended - failed_at:.1f} s to end after the failure"


def digits_summary(directory, algorithm: str, *options, ranks: int = 4, epochs: int = 10,
                   mutated: bool = False) -> dict:
    """The summary record of ``mpisgd train`` on digits (seed 0) with ``ranks`` ranks.

    ``mutated``: the same run with the algorithm's communication off (progs/train_mutated.py)."""
    path = Path(directory) / f"{algorithm}{'-mutated' if mutated else ''}.jsonl"
    arguments = ["--epochs", epochs, "--seed", "0", "--quiet", "--metrics", path, *options]
    result = (mpiexec(ranks, [PROGS / "train_mutated.py", algorithm, *arguments], timeout=240) if mutated
              else mpisgd(ranks, "train", "--algorithm", algorithm, *arguments, timeout=240))
    assert result.returncode == 0, result.output[-3000:]
    summary = json.loads(path.read_text().splitlines()[-1])
    assert summary["event"] == "summary" and summary["world_size"] == ranks
    return summary
