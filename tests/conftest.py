import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def sync_summary(tmp_path_factory):
    """sync on digits, 4 ranks, 10 epochs, seed 0: the reference of the accuracy tests."""
    from mpirun import digits_summary

    return digits_summary(tmp_path_factory.mktemp("sync"), "sync")
