"""The DP release of the all-reduce family under mpiexec (ALGORITHMS.md §10.5, properties 4 and 5)."""

import pytest

from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_distributed_sum_and_released_noise_std(ranks):
    result = run_prog(ranks, "privacy_dp_step.py", timeout=90)
    assert_ok(result)
    assert result.stdout.count("std/(sigma C)") == 2, result.stdout
