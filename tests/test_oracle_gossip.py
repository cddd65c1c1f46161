"""Independent step-by-step oracles of the gossip family (ALGORITHMS.md §6 to §8).

``progs/oracle_gossip.py``: p ranks, each on its own quadratic from its own
start (float64, flat-vector API), run an algorithm with its communication
schedule recorded (``GossipAlgorithm.record``); the numpy reference
``progs/_gossip_reference.py``, written from the spec, replays that schedule
for all p workers and must match every rank after every step within 1e-12.
With the algorithm's averaging replaced by a no-op (``progs/_mutations.py``)
the same oracle must fail.
"""

import pytest
from mpirun import PROGS, assert_mutation_fails, assert_ok, run_prog, top_level_imports

ALGORITHMS = ["gossip", "elastic-gossip", "adpsgd", "swift", "divshare"]


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_the_reference_step_by_step(algorithm, ranks):
    assert_ok(run_prog(ranks, "oracle_gossip.py", algorithm, timeout=120))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_oracle_fails_when_averaging_is_a_no_op(algorithm):
    result = run_prog(2, "oracle_gossip.py", algorithm, "--mutate", timeout=120)
    assert_mutation_fails(result, "differs from the reference")


def test_reference_is_independent_of_the_code_under_test():
    """The reference imports numpy only (never mpisgd, never the class it checks)."""
    assert top_level_imports(PROGS / "_gossip_reference.py") == {"numpy"}
