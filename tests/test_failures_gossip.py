"""A rank killed with ``kill -9`` mid-run (``--fail RANK:kill@STEP``), outside the master-worker family.

Gossip family, under MPICH's survivable launch (docs/failures.md): the survivors notice (the MPI
library's report, at most 0.5 s late, or a receive from the dead rank that fails), stop choosing it,
finish, and end the run among themselves: the job's survivors exit 0 (mpiexec returns the killed
rank's wrapper status, 137), the summary names the lost rank, and the survivors' common model has
learned (digits, 10 classes: chance is 0.1). AD-PSGD loses a passive worker (rank 1 of 4), so an
active worker waiting for its reply must give up; Gossiping SGD's synchronous rounds lose rank 2 of 3,
so a round's all-gather waiting for it must be run again among the others.

Collective family: it cannot go on; both launches end within seconds of the kill, naming the rank.
"""

import json

import pytest
from mpirun import assert_fails_fast, mpisgd, survivable_mpisgd

from mpisgd.errors import UsageError
from mpisgd.train.failures import check_failures, parse_failures

RUN = ["--epochs", "3", "--lr", "0.2", "--seed", "0", "--quiet"]  # uninterrupted: about 0.9
DEADLINE_S = 90  # the whole job (start-up included); a survivor waiting for the dead rank would run into it
LIBRARY = ("process failed", "could not be received")  # the two ways a survivor learns it (docs/failures.md)


@pytest.mark.parametrize("algorithm, ranks, victim", [("adpsgd", 4, 1), ("gossip", 3, 2)])
def test_gossip_survivors_finish_without_the_killed_rank(tmp_path, algorithm, ranks, victim):
    path = tmp_path / "m.jsonl"
    result = survivable_mpisgd(ranks, "train", "--algorithm", algorithm, *RUN, "--metrics", path,
                               "--fail", f"{victim}:kill@5", timeout=DEADLINE_S)
    assert not result.timed_out, f"hung\n{result.output[-3000:]}"
    assert result.returncode == 137, result.output[-3000:]  # the killed rank's wrapper; survivors 0
    assert f"--fail {victim}:kill@5: kills itself with SIGKILL" in result.stderr
    summary = json.loads(path.read_text().splitlines()[-1])
    assert summary["event"] == "summary", summary
    survivors = [r for r in range(ranks) if r != victim]
    assert summary["present"] == survivors and summary["failed"] == [victim], summary
    assert list(summary["lost"]) == [str(victim)] and any(w in summary["lost"][str(victim)] for w in LIBRARY)
    assert summary["lost_at_s"][str(victim)] < 10, summary  # noticed, not waited out
    assert len(summary["bytes_sent_per_rank"]) == len(survivors)
    assert summary["final_accuracy"] > 0.6, summary


def test_collective_survivable_launch_ends_naming_the_rank():
    """The survivors' FailureWatch names the rank and aborts the job."""
    result = survivable_mpisgd(3, "train", "--algorithm", "sync", *RUN, "--fail", "2:kill@5", timeout=60)
    assert_fails_fast(result, "rank 2 was lost (reported by the MPI library); sync cannot go on", within=20)
    assert "resume from the last checkpoint with --resume" in result.stderr


def test_collective_plain_launch_ends_naming_the_rank():
    """Hydra ends the job when a rank dies by a signal; the rank's own line names it."""
    result = mpisgd(3, "train", "--algorithm", "local", *RUN, "--fail", "2:kill@5", timeout=60)
    assert_fails_fast(result, "mpisgd: rank 2 (pid", within=20)
    assert "Killed (signal 9)" in result.output


@pytest.mark.parametrize("spec, gossip, message", [
    ("1:exit@3", True, "exit needs a master-worker algorithm"),
    ("1:silent@3", False, "silent needs a master-worker algorithm"),
    ("0:kill@3", True, "rank 0 writes the metrics"),
    ("4:kill@3", False, "rank 4 is not one of ranks 0..3"),
])
def test_failures_outside_master_worker(spec, gossip, message):
    with pytest.raises(UsageError, match=message):
        check_failures(parse_failures(spec), [], "x", size=4, gossip=gossip)
    check_failures(parse_failures("3:kill@3,2:slow:2@1"), [], "x", size=4, gossip=gossip)  # allowed
