"""Checkpoints, exact resume and preemption (issue 12; docs/cluster.md).

- every deterministic algorithm, preempted mid-epoch and resumed, ends with
  the uninterrupted run's parameters bit for bit (``params_digest``), and a
  resume that forgets part of the state is caught;
- a real signal to ``mpiexec`` ends the job with status 75 and a checkpoint,
  synchronous and asynchronous, and ``--resume`` completes the run in the
  same metrics file;
- a writer killed in the middle of a checkpoint leaves the previous one,
  and the run resumes from it exactly;
- bad values and a checkpoint from another run end with one line and status 2.
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from mpirun import MPIEXEC, assert_ok, mpisgd, run_command, run_prog

DETERMINISTIC = ["sync", "local", "cocod", "fda", "easgd", "eamsgd", "lsgd", "gossip", "elastic-gossip",
                 "sync+dp", "local+dp"]  # NAME+dp: a seeded DP run (tests/progs/resume_exact.py)


def _digests(result) -> dict:
    line = next(line for line in result.stdout.splitlines() if line.startswith("DIGESTS "))
    return json.loads(line[len("DIGESTS "):])


def test_resume_is_bit_identical_for_every_deterministic_algorithm(tmp_path):
    result = run_prog(3, "resume_exact.py", tmp_path, ",".join(DETERMINISTIC), timeout=240)
    assert_ok(result)
    digests = _digests(result)
    for algorithm in DETERMINISTIC:
        uninterrupted, resumed, steps = digests[algorithm]
        assert steps == 30 - 18, f"{algorithm}: the resumed run took {steps} steps, not the 12 left"
        assert resumed == uninterrupted, f"{algorithm}: resumed parameters differ from the uninterrupted run's"


def test_a_resume_that_forgets_state_is_caught(tmp_path):
    result = run_prog(3, "resume_exact.py", tmp_path, "local:state,gossip:rngs,sync:sampler", timeout=180)
    assert_ok(result)
    for algorithm, (uninterrupted, resumed, _) in _digests(result).items():
        assert resumed != uninterrupted, f"{algorithm}: a resume missing part of its state went unnoticed"


def _records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _launch_and_signal(tmp_path, number, algorithm, *extra):
    """Start a long run on 3 ranks, send ``number`` to mpiexec after its third epoch record."""
    metrics, directory = tmp_path / "m.jsonl", tmp_path / "ckpt"
    args = ["train", "--algorithm", algorithm, "--epochs", "2000", "--quiet", "--checkpoint-dir", directory,
            "--metrics", metrics, *extra]
    sent = {}

    def signal_when_training(process):
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if metrics.exists() and metrics.read_text().count('"event": "epoch"') >= 3:
                sent["at"] = time.time()
                os.kill(process.pid, number)
                return
            time.sleep(0.2)

    def started(process):
        threading.Thread(target=signal_when_training, args=(process,), daemon=True).start()

    result = run_command([MPIEXEC, "-n", "3", sys.executable, "-m", "mpisgd", *args], timeout=180, started=started)
    return result, sent, metrics, directory


@pytest.mark.parametrize("algorithm, number", [("sync", signal.SIGUSR1), ("adpsgd", signal.SIGTERM)])
def test_signal_checkpoints_exits_75_and_resume_completes(tmp_path, algorithm, number):
    result, sent, metrics, directory = _launch_and_signal(tmp_path, number, algorithm)
    assert "at" in sent, result.output[-3000:]
    assert result.returncode == 75, f"exit {result.returncode}\n{result.output[-3000:]}"
    assert result.ended - sent["at"] < 30, f"took {result.ended - sent['at']:.1f} s to stop after the signal"
    assert f"preempted ({signal.Signals(number).name})" in result.stderr
    assert (directory / "latest").read_text().strip() == "ckpt-000001"
    stopped_at = json.loads((directory / "ckpt-000001" / "meta.json").read_text())["step"]
    before = _records(metrics)
    assert not any(r["event"] == "summary" for r in before)
    epochs = str(before[-1]["epoch"] + 30)  # asynchronous ranks stop at different epochs
    resumed = mpisgd(3, "train", "--algorithm", algorithm, "--epochs", epochs, "--quiet", "--checkpoint-dir",
                     directory, "--metrics", metrics, "--resume", timeout=120)
    assert resumed.returncode == 0, resumed.output[-3000:]
    records = _records(metrics)
    events = [r["event"] for r in records]
    assert events.count("start") == 1 and events.count("resume") == 1 and events[-1] == "summary"
    resume = records[events.index("resume")]
    assert resume["step"] == stopped_at and resume["checkpoint"] == 1
    assert records[-1]["final_accuracy"] > 0.9, records[-1]


COMMON = ["--epochs", "2", "--quiet", "--seed", "1"]  # sync, 2 ranks: 46 steps


@pytest.fixture(scope="module")
def reference_digest(tmp_path_factory):
    """The uninterrupted run's final parameters (COMMON, no checkpoint)."""
    metrics = tmp_path_factory.mktemp("reference") / "m.jsonl"
    assert_ok(mpisgd(2, "train", *COMMON, "--metrics", metrics, timeout=120), expect="")
    return _records(metrics)[-1]["params_digest"]


def test_writer_killed_mid_checkpoint_resumes_from_the_previous_one(tmp_path, reference_digest):
    directory = tmp_path / "ckpt"
    crashed = run_prog(2, "checkpoint_crash.py", directory, timeout=120)
    assert crashed.returncode != 0 and not crashed.timed_out, crashed.output[-3000:]
    assert "KILLING-WRITER" in crashed.stdout, crashed.output[-3000:]
    assert (directory / "latest").read_text().strip() == "ckpt-000001"
    assert (directory / "ckpt-000002" / "rank-1.pt.tmp").exists()  # the torn file, never renamed
    metrics = tmp_path / "resumed.jsonl"
    resumed = mpisgd(2, "train", *COMMON, "--checkpoint-dir", directory, "--checkpoint-every", "10", "--resume",
                     "--metrics", metrics, timeout=120)
    assert resumed.returncode == 0, resumed.output[-3000:]
    records = _records(metrics)
    assert records[0]["event"] == "resume" and records[0]["step"] == 10 and records[0]["checkpoint"] == 1
    assert records[-1]["params_digest"] == reference_digest


def test_collective_run_with_a_lost_rank_ends_and_resumes_exactly(tmp_path, reference_digest):
    """sync cannot go on without a rank: the job ends naming it, and --resume from the last
    checkpoint (step 20: the kill comes after step 30, before its checkpoint) completes the run
    with the uninterrupted run's parameters."""
    directory, metrics = tmp_path / "ckpt", tmp_path / "m.jsonl"
    flags = ["--checkpoint-dir", directory, "--checkpoint-every", "10", "--metrics", metrics]
    killed = mpisgd(2, "train", *COMMON, *flags, "--fail", "1:kill@30", timeout=120)
    assert killed.returncode != 0 and not killed.timed_out, killed.output[-3000:]
    assert "rank 1" in killed.output, killed.output[-3000:]
    assert (directory / "latest").read_text().strip() == "ckpt-000002"
    resumed = mpisgd(2, "train", *COMMON, *flags, "--resume", timeout=120)
    assert resumed.returncode == 0, resumed.output[-3000:]
    records = _records(metrics)
    assert [r["step"] for r in records if r["event"] == "resume"] == [20]
    assert records[-1]["event"] == "summary" and records[-1]["params_digest"] == reference_digest


@pytest.mark.parametrize("args, message", [
    (["--checkpoint-every", "0", "--checkpoint-dir", "D"], "--checkpoint-every must be a number of steps"),
    (["--checkpoint-every", "5x", "--checkpoint-dir", "D"], "--checkpoint-every must be a number of steps"),
    (["--checkpoint-every", "10"], "--checkpoint-every needs --checkpoint-dir DIR"),
    (["--resume"], "--resume needs --checkpoint-dir DIR"),
    (["--resume", "--checkpoint-dir", "EMPTY"], "--resume: no checkpoint in"),
    (["--algorithm", "adpsgd", "--checkpoint-every", "10", "--checkpoint-dir", "D"], "adpsgd is asynchronous"),
])
def test_bad_checkpoint_settings(tmp_path, args, message):
    args = [str(tmp_path / a) if a in ("D", "EMPTY") else a for a in args]
    result = run_command([sys.executable, "-m", "mpisgd", "train", "--quiet", *args], timeout=60)  # 1 rank
    assert result.returncode == 2, result.output[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("mpisgd: error")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def test_checkpoint_of_another_run_is_refused(tmp_path):
    directory = tmp_path / "ckpt"
    one_rank = [sys.executable, "-m", "mpisgd", "train", "--quiet", "--checkpoint-dir", directory]
    assert_ok(run_command([*one_rank, "--epochs", "1", "--checkpoint-every", "5"], timeout=120), expect="")
    for ranks, args, message in [(2, [], "world size 1, this run has 2"),
                                 (1, ["--algorithm", "local"], "algorithm 'sync', this run has 'local'"),
                                 (1, ["--model", "cnn"], "model 'mlp', this run has 'cnn'")]:
        command = [*one_rank, "--resume", *args]
        result = mpisgd(2, *command[3:], timeout=60) if ranks == 2 else run_command(command, timeout=60)
        assert result.returncode == 2, result.output[-2000:]
        assert message in result.stderr, result.stderr[-2000:]
