"""The stall watchdog (``--stall-timeout``): a rank that stops calling into MPI ends the job, every rank
saying what it waits for.

The MPI tests run ``tests/progs/stall.py``: ``mpisgd train`` where one rank sleeps for good after its
local step 5 (outside MPI); the others block in the next all-reduce. The watchdog's thread must run
while its main thread is blocked inside MPI (mpi4py releases the GIL in blocking calls: the waiting
ranks' lines prove it), each rank prints one line, and the job ends non-zero within the timeout plus
a stated allowance.
"""

import io
import json
import re
import threading
import time

import pytest
from mpirun import MPIEXEC, PROGS, mpiexec, mpisgd

from mpisgd.comm import activity
from mpisgd.comm.watchdog import EXIT_STATUS, Watchdog

TIMEOUT_S = 3
ALLOWANCE_S = 15  # the watchdog's grace (min(timeout, 5) s), then mpiexec ending the ranks on a loaded machine
LINE = re.compile(r"mpisgd: rank (\d+) \(pid \d+, host [^)]+\): no progress for ([0-9.]+) s; (.*); last step (\d+)")


def stalled(ranks: int, *train_args):
    """Run the stall program (rank ranks-1 stuck after step 5); the watchdog's lines by rank."""
    result = mpiexec(ranks, [PROGS / "stall.py", ranks - 1, 5, "--epochs", 3, "--quiet",
                             "--stall-timeout", TIMEOUT_S, *train_args], timeout=120)
    assert not result.timed_out, f"hung\n{result.output[-3000:]}"
    assert result.returncode != 0, f"exit 0\n{result.output[-3000:]}"
    lines = {int(m.group(1)): m for m in map(LINE.match, result.stderr.splitlines()) if m}
    assert sorted(lines) == list(range(ranks)), f"every rank must print its line once\n{result.output[-3000:]}"
    assert sum(1 for line in result.stderr.splitlines() if LINE.match(line)) == ranks, result.stderr
    failed_at = float(re.search(r"FAILING-AT ([0-9.]+)", result.stdout).group(1))
    took = result.ended - failed_at
    assert TIMEOUT_S <= took < TIMEOUT_S + ALLOWANCE_S, f"ended {took:.1f} s after the stall\n{result.output}"
    for match in lines.values():
        assert float(match.group(2)) >= TIMEOUT_S
    return lines


def test_stuck_rank_in_sync_ends_the_job_and_every_rank_says_why(tmp_path):
    lines = stalled(2, "--trace", tmp_path / "stall.json")  # sync: Iallreduce per bucket, then Wait
    stuck, waiting = lines[1], lines[0]
    assert stuck.group(3).startswith("not waiting in MPI: computing or stuck in user code since")
    assert stuck.group(4) == "5"
    assert waiting.group(3).startswith("waiting in Wait (Iallreduce: all-reduce of"), waiting.group(0)
    assert int(waiting.group(4)) >= 5
    for rank in (0, 1):  # the watchdog writes the trace before it ends the job
        events = json.loads((tmp_path / f"stall.rank{rank}.json").read_text())["traceEvents"]
        assert sum(e.get("name") == "forward" for e in events) >= 5


def test_stuck_rank_with_blocking_allreduce_on_three_ranks():
    lines = stalled(3, "--algorithm", "local", "--period", 4)  # Local SGD: a blocking Allreduce every 4 steps
    assert lines[2].group(3).startswith("not waiting in MPI")
    for rank in (0, 1):
        assert lines[rank].group(3).startswith("waiting in Allreduce (all-reduce of"), lines[rank].group(0)
        assert lines[rank].group(4) == "7", "the others wait in step 8's average (7 steps done)"


def test_stall_timeout_must_be_positive():
    result = mpisgd(2, "train", "--quiet", "--stall-timeout", "0", timeout=60)
    assert result.returncode == 2, result.output[-2000:]
    assert "--stall-timeout must be positive, got 0.0" in result.stderr
    assert result.stderr.count("error:") == 1, result.stderr


# -- the watchdog on its own (no MPI): it fires on silence, names the wait, stays quiet on progress -------

@pytest.fixture
def watched():
    """Start watchdogs with a short timeout whose exit is recorded, not taken; switch the hooks off after."""
    dogs = []

    def start(timeout=0.3):
        exits, stream = [], io.StringIO()
        dog = Watchdog(timeout, 7, grace=0, exit=exits.append, stream=stream).start()
        dogs.append(dog)
        return dog, exits, stream

    yield start
    for dog in dogs:
        dog.stop()
    activity.switch_off()
    activity.STATE.waiting = activity.STATE.poll = None


def test_watchdog_names_the_blocking_call(watched):
    previous = activity.enter("Barrier", "on the harness")
    dog, exits, stream = watched()
    time.sleep(1.0)
    activity.leave(previous)
    assert exits == [EXIT_STATUS]
    line = LINE.match(stream.getvalue())
    assert line and line.group(1) == "7", stream.getvalue()
    assert line.group(3).startswith("waiting in Barrier (on the harness) since")


def test_watchdog_stays_quiet_while_progress_is_made(watched):
    dog, exits, stream = watched()
    stop = threading.Event()
    for _ in range(10):  # 1 s of steps every 0.05 s, well past the 0.3 s timeout
        activity.progress(1)
        stop.wait(0.05)
    dog.stop()
    assert exits == [] and stream.getvalue() == ""


def test_watchdog_rejects_a_timeout_that_is_not_positive():
    with pytest.raises(ValueError, match="must be positive"):
        Watchdog(0, 0)
