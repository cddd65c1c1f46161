"""Failure paths: each ends every rank with a clear message and a non-zero status, fast."""

import os
import subprocess
import sys

import pytest
from mpirun import ROOT, assert_fails_fast, mpiexec, mpisgd, run_prog


def test_ranks_with_different_models():
    result = run_prog(4, "mismatch.py", timeout=60)
    assert_fails_fast(result, "ranks disagree on the model and algorithm")
    assert "rank 3 differs from rank 0" in result.output
    assert "NOT REACHED" not in result.stdout


def test_exception_on_one_rank_ends_the_job():
    result = mpiexec(4, ["tests/progs/rank_raises.py"], timeout=60)
    assert_fails_fast(result, "[rank 1] ValueError: injected failure on rank 1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algorithm", "nope"], "invalid choice: 'nope'"),
        (["--lr", "-0.1"], "--lr must be positive"),
        (["--metrics", "/proc/no-such-dir/metrics.jsonl"], "No such file or directory"),
        (["--dataset", "synthetic", "--samples", "4", "--classes", "2"], "4 ranks but only 3 training samples"),
        (["--bucket-mb", "0"], "option bucket_mb must be positive"),
        (["--partition", "dirichlet:-1"], "--partition must be 'iid' or 'dirichlet:ALPHA'"),
    ],
    ids=["unknown-algorithm", "negative-lr", "unwritable-metrics", "more-ranks-than-data", "bad-option",
         "bad-partition"],
)
def test_bad_cli_input(args, message):
    result = mpisgd(4, "train", "--quiet", *args, timeout=60)
    assert_fails_fast(result, message)
    assert message in result.stderr, result.output[-3000:]
    assert result.stderr.count("error:") == 1, f"the message must be printed once:\n{result.stderr}"
    assert "Traceback" not in result.output, result.output[-3000:]


def test_launcher_library_mismatch_is_detected():
    """N processes that each see a world of 1 (wrong libmpi) must not train silently."""
    env = dict(os.environ, PMI_SIZE="4", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "mpisgd", "train", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "mpi4py loaded a different MPI library" in result.stderr
