"""Synchronous all-reduce SGD under real mpiexec."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_sync_equals_single_process_sgd_plain_and_momentum(ranks):
    assert_ok(run_prog(ranks, "sync_oracle.py"))
