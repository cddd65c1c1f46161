"""LSGD (Teng et al., NeurIPS 2019) against its independent numpy oracle, under real mpiexec."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks, group_size", [(1, 0), (2, 0), (4, 0), (4, 2)])
def test_lsgd_matches_its_oracle_step_by_step(ranks, group_size):
    """Single leader (one group) and multi-leader (groups of 2): every step to 1e-12, both report orders,
    plus ties, pull 0, deterministic LGD and refused options (single leader runs)."""
    assert_ok(run_prog(ranks, "oracle_lsgd.py", "--group-size", group_size, timeout=120))


@pytest.mark.parametrize("ranks, group_size", [(2, 0), (4, 2)])
def test_lsgd_oracle_fails_without_communication(ranks, group_size):
    """The no-op mutation (no election, broadcast or pull) must make the oracle fail."""
    result = run_prog(ranks, "oracle_lsgd.py", "--group-size", group_size, "--mutate", timeout=120)
    assert not result.timed_out, result.output[-3000:]
    assert result.returncode != 0, result.output[-3000:]
    assert "lsgd differs from the oracle" in result.output, result.output[-3000:]
