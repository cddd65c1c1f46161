"""Independent step-by-step oracles of the collective family (tests/progs/oracle_collective.py),
and the proof that each can fail: with the algorithm's communication replaced by a no-op
(tests/progs/_mutations.py) the same program must report a mismatch."""

import pytest
from mpirun import assert_ok, run_prog

ALGORITHMS = ["sync", "local", "cocod", "fda", "easgd"]


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_the_numpy_reference_step_by_step(algorithm, ranks):
    assert_ok(run_prog(ranks, "oracle_collective.py", algorithm))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_case_fails_with_communication_off(algorithm):
    result = run_prog(2, "oracle_collective.py", algorithm, "--mutate")
    assert not result.timed_out, f"hung\n{result.output[-3000:]}"
    assert result.returncode != 0 and "ORACLE MISMATCH" in result.stdout, result.output[-3000:]
    assert "MUTATION SURVIVED" not in result.stdout, result.stdout
    print(result.stdout)  # one line per case, for the record (pytest -s)
