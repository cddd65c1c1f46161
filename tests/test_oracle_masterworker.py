"""Independent step-by-step oracles of the master-worker EASGD family (ALGORITHMS.md §3.1, §4.2).

``progs/oracle_masterworker.py``: server rank(s) and workers, each worker on its
own quadratic from its own start (float64, flat-vector API, rank-dependent
pauses so that the workers' messages interleave), run easgd-async (both orders,
1 and 2 servers), eamsgd-async (delta 0.9, both orders) or easgd-dw (deadline
closings, late reports, both weightings) with each server's handling order
recorded (``MasterWorkerAlgorithm.record``); the numpy reference
``progs/_masterworker_reference.py``, written from the spec, replays that order
for all workers and must match every worker after every step, what each ended
holding and the final center within 1e-12. With the exchange replaced by a
no-op (``progs/_mutations.py``) the same oracle must fail.
"""

import pytest
from mpirun import PROGS, assert_mutation_fails, assert_ok, run_prog, top_level_imports

ALGORITHMS = ["easgd-async", "eamsgd-async", "easgd-dw"]


@pytest.mark.parametrize("ranks", [3, 5])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_the_reference_step_by_step(algorithm, ranks):
    assert_ok(run_prog(ranks, "oracle_masterworker.py", algorithm, timeout=120))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_oracle_fails_when_the_exchange_is_a_no_op(algorithm):
    result = run_prog(3, "oracle_masterworker.py", algorithm, "--mutate", timeout=120)
    assert_mutation_fails(result, "differs from the reference")


def test_reference_is_independent_of_the_code_under_test():
    """The reference imports numpy only (never mpisgd, never the class it checks)."""
    assert top_level_imports(PROGS / "_masterworker_reference.py") == {"numpy"}
