"""The gossip family under real mpiexec: messaging layer, oracles, accuracy."""

import pytest
from mpirun import assert_ok, digits_summary, run_prog


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_messenger_outbox_inbox_slow_link_and_clean_exit(ranks):
    assert_ok(run_prog(ranks, "messenger.py"))


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_gossip_and_elastic_gossip_oracles(ranks):
    assert_ok(run_prog(ranks, "gossip_oracle.py"))


@pytest.mark.parametrize("algorithm", ["gossip", "elastic-gossip"])
def test_digits_accuracy_close_to_sync(tmp_path, sync_summary, algorithm):
    """A CLI run on digits with 4 ranks ends within 3 points of sync at the same epochs and seed."""
    summary = digits_summary(tmp_path, algorithm)
    assert abs(summary["final_accuracy"] - sync_summary["final_accuracy"]) <= 0.03, (
        summary["final_accuracy"], sync_summary["final_accuracy"])


def test_directed_topology_is_refused(tmp_path):
    from mpirun import mpisgd

    result = mpisgd(2, "train", "--algorithm", "gossip", "--topology", "exponential", "--quiet")
    assert result.returncode == 2 and "is directed" in result.stderr, result.output[-2000:]
