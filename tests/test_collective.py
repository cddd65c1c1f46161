"""The collective family under real mpiexec: properties, statistics, torch wrappers, accuracy.

The step-by-step oracles of sync, local, cocod, fda and easgd are in test_oracle_collective.py.
"""

import pytest
from mpirun import assert_ok, digits_summary, run_prog

@pytest.mark.parametrize("ranks", [1, 4])
@pytest.mark.parametrize("program", ["local_statistics.py", "cocod_state.py", "fda_properties.py"])
def test_properties_on_numpy_vectors(program, ranks):
    assert_ok(run_prog(ranks, program))


@pytest.mark.parametrize("ranks", [2, 4])
def test_cocod_keeps_its_all_reduce_in_flight(ranks):
    assert_ok(run_prog(ranks, "cocod_hides_comm.py", timeout=120))


def test_torch_wrappers_and_state_dicts():
    assert_ok(run_prog(2, "torch_wrappers.py", timeout=120))


# -- accuracy on non-IID shards, where training alone fails -------------------------------------
# Dirichlet 0.3 over 4 ranks gives each rank mostly 4-6 of the 10 digits. Measured (seed 0, 10 epochs,
# momentum 0.9): sync 0.958, local 0.947, fda 0.944, cocod 0.922, easgd 0.914, eamsgd (its own
# Nesterov delta 0.99) 0.922; every run with its communication off (train_mutated.py) 0.61 (easgd 0.59,
# eamsgd 0.66): over 25 points short.
NON_IID = ("--partition", "dirichlet:0.3", "--momentum", "0.9")
CLOSE_TO_SYNC = 0.05  # an algorithm that communicates ends within 5 points of sync
SHORTFALL = 0.2  # the same run without communication ends at least 20 points lower
COMMUNICATING = ["local", "cocod", "fda", "easgd", "eamsgd"]  # lsgd: its own test below


@pytest.fixture(scope="module")
def non_iid(tmp_path_factory):
    """summary(algorithm, mutated=False): the digits run on NON_IID shards, each run once per module."""
    runs = {}

    def summary(algorithm, mutated=False):
        if (algorithm, mutated) not in runs:
            directory = tmp_path_factory.mktemp(algorithm)
            options = NON_IID[:2] if algorithm == "eamsgd" else NON_IID  # eamsgd carries its own momentum
            runs[algorithm, mutated] = digits_summary(directory, algorithm, *options, mutated=mutated)
        return runs[algorithm, mutated]

    return summary


@pytest.mark.parametrize("algorithm", COMMUNICATING)
def test_non_iid_digits_accuracy_close_to_sync(non_iid, algorithm):
    """4 ranks on Dirichlet-0.3 shards end within CLOSE_TO_SYNC of sync, sending fewer bytes per rank."""
    summary, sync = non_iid(algorithm), non_iid("sync")
    assert abs(summary["final_accuracy"] - sync["final_accuracy"]) <= CLOSE_TO_SYNC, (
        summary["final_accuracy"], sync["final_accuracy"])
    assert 0 < summary["bytes_sent"] < sync["bytes_sent"]


@pytest.mark.parametrize("algorithm", ["sync", *COMMUNICATING])
def test_non_iid_digits_accuracy_needs_communication(non_iid, algorithm):
    """The same run with the algorithm's averaging replaced by a no-op falls SHORTFALL short."""
    alone, together = non_iid(algorithm, mutated=True), non_iid(algorithm)
    assert alone["final_accuracy"] <= together["final_accuracy"] - SHORTFALL, (
        alone["final_accuracy"], together["final_accuracy"])


def test_lsgd_non_iid_accuracy_needs_communication(non_iid):
    """LSGD at the paper's pull strengths (0.1) on NON_IID shards: measured 0.735 against training alone
    0.624 and sync 0.958 (its ranks stay near their own shards; finish() keeps the leader's model). It
    must beat the run without its pulls by 8 points; it is not close to sync here (docs/algorithms.md)."""
    alone, together = non_iid("lsgd", mutated=True), non_iid("lsgd")
    assert together["final_accuracy"] >= alone["final_accuracy"] + 0.08, (
        alone["final_accuracy"], together["final_accuracy"])
    assert 0 < together["bytes_sent"] < non_iid("sync")["bytes_sent"]
