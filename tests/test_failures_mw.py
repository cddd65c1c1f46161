"""Master-worker training through the command line, and worker failures: no rank waits forever.

Each run: ``python -m mpisgd train --algorithm easgd-async`` on 4 ranks (rank 0 serves, ranks 1-3 are
workers; two servers in one run), digits, a few epochs. A failure test checks that the job ends within
its deadline, with the exit status of docs/failures.md and the server's report naming the rank. To keep
launches few, the slow worker rides along a one-server learning run and the silent and the exiting
workers share a run (each kind has its own test of the report).
"""

import json
import shlex
import sys

import pytest
from mpirun import MPIEXEC, assert_fails_fast, mpisgd, run_command

from mpisgd.errors import UsageError
from mpisgd.train.failures import Failure, parse_failures

RUN = ["--algorithm", "easgd-async", "--epochs", "4", "--seed", "0", "--quiet"]
WORKERS = [1, 2, 3]


def train(directory, *args, timeout=90):
    """(result, summary record or None) of a 4-rank run."""
    path = directory / "m.jsonl"
    result = mpisgd(4, "train", *RUN, "--metrics", path, *args, timeout=timeout)
    return result, _summary(path)


def _summary(path):
    lines = path.read_text().splitlines() if path.exists() else []
    summary = json.loads(lines[-1]) if lines else None
    return summary if summary and summary["event"] == "summary" else None


def _epochs(path):
    """The run's epoch records (rank 0 writes: the server)."""
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == "epoch"]


def assert_completed(result, summary, present, code=0):
    assert not result.timed_out, f"hung\n{result.output[-3000:]}"
    assert result.returncode == code, result.output[-3000:]
    assert summary is not None, result.output[-3000:]
    assert summary["present"] == present, summary
    assert len(summary["bytes_sent_per_rank"]) == len(present)
    assert summary["final_accuracy"] > 0.5, summary  # the center learned (chance: 0.1)


def steps_of(servers, epochs=4):
    return epochs * -(-1437 // ((4 - servers) * 32))  # digits: 1437 training samples over the workers


@pytest.fixture(scope="module")
def one_server_slow_worker(tmp_path_factory):
    """servers=1; worker 3's steps take 10 times longer from its step 5 on; a target accuracy of 0.6."""
    directory = tmp_path_factory.mktemp("slow")
    return (*train(directory, "--fail", "3:slow:10@5", "--timeout", "30", "--target-accuracy", "0.6"),
            directory / "m.jsonl")


@pytest.fixture(scope="module")
def silent_and_exiting(tmp_path_factory):
    """Worker 2 falls silent at its step 10 (counted lost after 3 s), worker 3 exits at its step 10."""
    return train(tmp_path_factory.mktemp("silent"), "--fail", "2:silent@10,3:exit@10", "--timeout", "3")


def test_easgd_async_learns_digits_one_server(one_server_slow_worker):
    result, summary, _ = one_server_slow_worker
    assert_completed(result, summary, [0, 1, 2, 3])
    assert summary["final_accuracy"] > 0.8, summary
    assert summary["servers"] == 1 and summary["workers"] == 3 and summary["steps"] == steps_of(1), summary
    report = summary["server_reports"][0]
    assert report["rank"] == 0 and report["exchanges"] > 0, report


def test_server_evaluates_the_center_mid_run(one_server_slow_worker):
    """Rank 0 (the one server) records epoch records while serving, and the time to accuracy is the wall
    time of the first record at or above the target."""
    result, summary, path = one_server_slow_worker
    assert_completed(result, summary, [0, 1, 2, 3])
    records = _epochs(path)
    mid_run, final = records[:-1], records[-1]
    assert len(mid_run) >= 2, records  # 4 epochs, --eval-every 1: evaluations before the end
    assert all(r["rank"] == 0 and r["loss"] == 0.0 for r in mid_run), mid_run  # the server trains on nothing
    walls = [r["wall_s"] for r in records]
    assert walls == sorted(walls) and len(set(walls)) == len(walls) and walls[-1] <= summary["wall_s"], walls
    epochs = [r["epoch"] for r in mid_run]
    assert epochs == sorted(set(epochs)) and 1 <= epochs[0] and epochs[-1] <= 4, epochs
    assert final["accuracy"] == summary["final_accuracy"]
    reached = next(r["wall_s"] for r in records if r["accuracy"] >= 0.6)
    assert summary["time_to_accuracy_s"] == reached < final["wall_s"], (summary["time_to_accuracy_s"], records)
    assert mid_run[0]["accuracy"] < summary["final_accuracy"], records  # the center moved between evaluations


def test_easgd_async_learns_digits_two_servers(tmp_path):
    result, summary = train(tmp_path, "--servers", "2")
    assert_completed(result, summary, [0, 1, 2, 3])
    assert len(_epochs(tmp_path / "m.jsonl")) == 1  # two servers: rank 0 holds a slice, evaluates at the end only
    assert summary["final_accuracy"] > 0.8, summary
    assert summary["servers"] == 2 and summary["workers"] == 2 and summary["steps"] == steps_of(2), summary
    assert [r["rank"] for r in summary["server_reports"]] == [0, 1]
    for report in summary["server_reports"]:
        assert report["left"] == [2, 3] and report["lost"] == {} and report["exchanges"] > 0, report


def test_slow_worker_is_waited_for(one_server_slow_worker):
    result, summary, _ = one_server_slow_worker
    assert_completed(result, summary, [0, 1, 2, 3])
    report = summary["server_reports"][0]
    assert report["left"] == WORKERS and report["lost"] == {}, report
    left_at = {int(r): t for r, t in report["left_at_s"].items()}
    assert left_at[3] > max(left_at[1], left_at[2]), left_at  # the slow worker left last


def test_silent_worker_is_lost_and_the_others_finish(silent_and_exiting):
    result, summary = silent_and_exiting
    assert_completed(result, summary, [0, 1, 2])  # alive: the silent worker takes part in the end of the run
    assert summary["lost"] == {"2": "silent for more than 3 s"}, summary
    assert 3 <= summary["lost_at_s"]["2"] < 20, summary
    assert summary["server_reports"][0]["left"] == [1, 3]


def test_exiting_worker_leaves_and_the_others_finish(silent_and_exiting):
    result, summary = silent_and_exiting
    assert "--fail 3:exit@10: leaves the run and exits" in result.stderr
    assert_completed(result, summary, [0, 1, 2])
    assert summary["departed"] == [3] and "3" not in summary["lost"], summary
    left_at = summary["server_reports"][0]["left_at_s"]
    assert left_at["3"] < left_at["1"], left_at  # it left at its step 10, early


def test_killed_worker_survivable_launch(tmp_path):
    """The launch of docs/failures.md (MPICH): the others finish; mpiexec returns the killed rank's 137."""
    path = tmp_path / "m.jsonl"
    command = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "mpisgd", "train", *RUN, "--metrics",
                                                     path, "--timeout", "30", "--fail", "2:kill@10"])
    result = run_command([MPIEXEC, "-disable-auto-cleanup", "-n", "4", "sh", "-c",
                          f"trap '' USR1; {command}; exit $?"], timeout=90, env={"MPISGD_TEST_RANKS": "4"})
    summary = _summary(path)
    assert_completed(result, summary, [0, 1, 3], code=137)
    assert summary["failed"] == [2], summary
    reason = summary["lost"]["2"]
    assert "process failed" in reason or "could not be received" in reason, reason
    assert summary["lost_at_s"]["2"] < 10, summary  # the library's report, not the 30 s silence


def test_killed_worker_ends_a_plain_launch(tmp_path):
    """Plain mpiexec (hydra kills the job when a rank dies by a signal): ends at once, naming the rank."""
    result = mpisgd(4, "train", *RUN, "--fail", "2:kill@10", timeout=90)
    assert_fails_fast(result, "rank 2 (pid", within=15)
    assert "--fail 2:kill@10: kills itself with SIGKILL" in result.stderr


def test_only_workers_may_fail():
    result = mpisgd(2, "train", *RUN, "--fail", "0:exit@3", timeout=60)
    assert result.returncode == 2, result.output[-3000:]
    assert result.stderr.count("--fail: rank 0 is not a worker") == 1, result.stderr


def test_failure_specifications():
    assert parse_failures("3:kill@40, 2:slow:4@10,1:silent@1") == [
        Failure(3, "kill", 40), Failure(2, "slow", 10, 4.0), Failure(1, "silent", 1)]
    for bad in ("3:kill", "3:boom@4", "x:exit@4", "3:exit@0", "3:silent:2@4", "3:slow:0.5@4", "1:exit@2,1:kill@3"):
        with pytest.raises(UsageError):
            parse_failures(bad)
