"""The collective family under real mpiexec: oracles, statistics, torch wrappers, accuracy."""

import pytest
from mpirun import assert_ok, digits_summary, run_prog

ALGORITHMS = ["local", "cocod", "fda", "easgd", "lsgd"]


@pytest.mark.parametrize("ranks", [1, 2, 4])
@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a != "lsgd"])  # lsgd: tests/test_lsgd.py
def test_oracles_on_numpy_vectors(algorithm, ranks):
    """Each program proves its algorithm's properties of ALGORITHMS.md without torch."""
    assert_ok(run_prog(ranks, f"{algorithm}_oracle.py"))


@pytest.mark.parametrize("ranks", [2, 4])
def test_cocod_keeps_its_all_reduce_in_flight(ranks):
    assert_ok(run_prog(ranks, "cocod_hides_comm.py", timeout=120))


def test_torch_wrappers_and_state_dicts():
    assert_ok(run_prog(2, "torch_wrappers.py", timeout=120))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digits_accuracy_close_to_sync(tmp_path, sync_summary, algorithm):
    """A CLI run on digits with 4 ranks ends within 2 points of sync at the same epochs and seed,
    while sending fewer bytes per rank."""
    summary = digits_summary(tmp_path, algorithm)
    assert abs(summary["final_accuracy"] - sync_summary["final_accuracy"]) <= 0.02, (
        summary["final_accuracy"], sync_summary["final_accuracy"])
    assert 0 < summary["bytes_sent"] < sync_summary["bytes_sent"]
