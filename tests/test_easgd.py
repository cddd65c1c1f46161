"""Synchronous EASGD and EAMSGD (mpisgd.collective.easgd) against an independent numpy oracle under
mpiexec, and the harness's local-momentum default (plain SGD for the EASGD family of the paper)."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("case", ["easgd", "eamsgd"])
def test_sync_easgd_and_eamsgd_follow_the_oracle(case, ranks):
    """Every step's parameters of every rank and the final center equal ALGORITHMS.md §3.1's simulation
    (1e-12); eamsgd with delta = 0 is easgd bit for bit."""
    assert_ok(run_prog(ranks, "oracle_easgd.py", case, timeout=60))


def test_torch_eamsgd_follows_the_oracle():
    """mpisgd.EAMSGD around a plain torch.optim.SGD: the same oracle through the torch binding."""
    pytest.importorskip("torch")
    assert_ok(run_prog(2, "oracle_easgd.py", "torch", timeout=90))


@pytest.mark.parametrize("case", ["easgd", "eamsgd"])
def test_oracle_fails_when_the_exchange_is_a_no_op(case):
    """The mutation (tests/progs/oracle_easgd.py no_exchange) must make the oracle fail."""
    result = run_prog(2, "oracle_easgd.py", case, "--mutate", timeout=60)
    assert not result.timed_out and result.returncode != 0, result.output[-3000:]
    assert f"{case}" in result.output and "differs from the oracle" in result.output, result.output[-3000:]


@pytest.mark.parametrize("algorithm, given, expected", [
    ("easgd", None, 0.0), ("eamsgd", None, 0.0), ("eamsgd-async", None, 0.0),  # the paper's plain SGD
    ("sync", None, 0.9), ("easgd-async", None, 0.9), ("lsgd", None, 0.9),
    ("easgd", 0.9, 0.9),  # momentum with easgd: an explicit choice
])
def test_local_momentum_default_comes_from_the_algorithm(algorithm, given, expected):
    from mpisgd.train import TrainConfig

    config = TrainConfig(algorithm=algorithm, momentum=given)
    config.validate()
    assert config.momentum == expected and config.public()["momentum"] == expected
    config.validate()  # resolved once, still valid


def test_adahessian_leaves_the_momentum_unset():
    from mpisgd.errors import UsageError
    from mpisgd.train import TrainConfig

    config = TrainConfig(algorithm="easgd", local_optimizer="adahessian")
    config.validate()
    assert config.momentum is None
    with pytest.raises(UsageError, match="--momentum needs --local-optimizer sgd"):
        TrainConfig(algorithm="easgd", local_optimizer="adahessian", momentum=0.0).validate()
