"""The master-worker messaging layer (mpisgd.comm.service) under real mpiexec."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("mode,ranks", [("sum", 2), ("sum", 4), ("stop", 4), ("silent", 3), ("mute", 2)])
def test_service(mode, ranks):
    assert_ok(run_prog(ranks, "service.py", mode, timeout=60))
