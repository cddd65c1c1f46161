"""Asynchronous EASGD and EAMSGD (easgd-async, eamsgd-async) and dynamic weighting (mpisgd.masterworker)
under real mpiexec, numpy only."""

import pytest
from mpirun import assert_ok, digits_summary, run_prog


@pytest.mark.parametrize("servers,order", [(1, "paper"), (2, "overlap")])
def test_async_easgd_conserves_and_converges(servers, order):
    """sum_i x^i + x~ changes only by the logged local steps; x~ reaches the mean objective's minimizer."""
    assert_ok(run_prog(4, "easgd_async.py", "oracle", servers, order, timeout=60))


@pytest.mark.parametrize("mutation,order,message", [
    ("exchange", "paper", "center did not converge"),
    ("server", "overlap", "sum of x^i + x~ not conserved"),
])
def test_async_easgd_oracles_can_fail(mutation, order, message):
    """A no-op exchange leaves x~ where it started; a server that drops updates breaks the conservation."""
    result = run_prog(4, "easgd_async.py", "oracle", 1, order, mutation, timeout=60)
    assert not result.timed_out and result.returncode != 0, result.output[-3000:]
    assert message in result.output, result.output[-3000:]


def test_async_easgd_and_eamsgd_follow_the_spec():
    """One worker per server: easgd-async is the spec's loop bit for bit (both orders), eamsgd-async with
    momentum 0 is easgd-async bit for bit, EAMSGD with momentum 0.9 is the spec's EAMSGD box."""
    assert_ok(run_prog(4, "easgd_async.py", "sequential", timeout=60))


@pytest.mark.parametrize("mode", [
    "equal",  # no failure: easgd-dw (dynamic and plain weights) equals synchronous EASGD
    "silent",  # a silent worker: the dynamic center converges, the plain one is pulled toward the frozen worker
    "return",  # a worker lost for longer than the timeout comes back and is reset to the center
])
def test_dynamic_weighting(mode):
    assert_ok(run_prog(4, "easgd_dw.py", mode, timeout=60))


def test_torch_classes():
    """EASGDAsync (both orders), EAMSGDAsync and EASGDDynamicWeighting around torch.optim.SGD; rank 0 serves."""
    pytest.importorskip("torch")
    assert_ok(run_prog(3, "torch_masterworker.py", timeout=90))


# -- accuracy on non-IID shards, with and without the exchange -------------------------------------
# 1 server + 3 workers on Dirichlet-0.3 digits shards, 10 epochs, seed 0 (easgd-async: the harness's local
# momentum 0.9). Measured: easgd-async 0.83-0.91 (asynchronous: the order of the updates varies run to run),
# eamsgd-async (its own delta 0.99) 0.86 (0.66 once, in CI, 2026-12-01), easgd-dw 0.94; with the exchange a no-op (progs/_mutations.py: workers never pulled, the center never
# moved; train_mutated.py) each ends at 0.128, the untrained center the harness evaluates: ~70 points short.
COMMUNICATING_AT_LEAST = 0.6  # with the exchange off: 0.128; the shortfall of 0.5 is still required
SHORTFALL = 0.5


@pytest.mark.parametrize("algorithm", ["easgd-async", "eamsgd-async", "easgd-dw"])
def test_non_iid_digits_accuracy_needs_the_exchange(tmp_path, algorithm):
    together = digits_summary(tmp_path, algorithm, "--partition", "dirichlet:0.3")
    alone = digits_summary(tmp_path, algorithm, "--partition", "dirichlet:0.3", mutated=True)
    assert together["final_accuracy"] >= COMMUNICATING_AT_LEAST, together["final_accuracy"]
    assert alone["final_accuracy"] <= together["final_accuracy"] - SHORTFALL, (
        alone["final_accuracy"], together["final_accuracy"])
    assert together["bytes_sent"] > 0 and alone["bytes_sent"] > 0  # the mutated run still sends
