"""Differentially private training in the harness (``--dp``): the step against the spec, the noise,
the accounting, the budget, the families, and the refusals (issue 10; ALGORITHMS.md §10)."""

import json

import pytest

from mpirun import assert_ok, mpisgd, run_prog
from mpisgd.errors import UsageError
from mpisgd.privacy.ledger import PrivacyLedger
from mpisgd.train import TrainConfig

N_TRAIN = 1438  # digits' training split


@pytest.mark.parametrize("ranks, algorithm, placement", [(1, "sync", "split"), (2, "sync", "split"),
                                                         (3, "sync", "one"), (2, "local", "each")])
def test_dp_step_matches_the_spec_and_releases_sigma_c(ranks, algorithm, placement):
    assert_ok(run_prog(ranks, "privacy_train_step.py", algorithm, placement, timeout=120))


@pytest.mark.parametrize("args, complaint", [(("sync", "split", "noop"), "off the spec"),
                                             (("sync", "each"), "released std")])
def test_the_step_test_fails_for_a_wrong_step(args, complaint):
    """Mutations: sync's all-reduce removed; every rank adding the full noise (std sigma*C*sqrt(p))."""
    result = run_prog(2, "privacy_train_step.py", *args, timeout=120)
    assert result.returncode != 0 and complaint in result.output, result.output[-3000:]


def _summary(tmp_path, ranks, *args, name="run"):
    path = tmp_path / f"{name}.jsonl"
    result = mpisgd(ranks, "train", "--quiet", "--metrics", path, *args, timeout=240)
    assert result.returncode == 0, result.output[-3000:]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return records, result


def test_a_budget_picks_the_noise_and_the_run_spends_it(tmp_path):
    records, result = _summary(tmp_path, 2, "--epochs", "3", "--dp", "psac", "--dp-epsilon", "2",
                               "--dp-seed", "4")
    summary = records[-1]
    steps = summary["steps"]
    q = 32 * 2 / N_TRAIN
    assert summary["sample_rate"] == pytest.approx(q) and summary["dp_guarantee"] == "central"
    from opacus.accountants import RDPAccountant  # the accountant's own answer for the run's schedule

    opacus = RDPAccountant()
    opacus.history = [(summary["noise_multiplier"], q, steps)]
    epsilon = opacus.get_epsilon(1e-5)
    assert summary["epsilon_spent"] == pytest.approx(epsilon, rel=1e-9)
    assert 1.99 < epsilon <= 2.0  # the smallest noise that meets the budget
    spent = [r["epsilon_spent"] for r in records if r["event"] == "epoch"]
    assert spent == sorted(spent) and len(spent) == 3 and spent[-1] == summary["epsilon_spent"]
    assert summary["final_accuracy"] > 0.5  # it learns (chance: 0.1)
    assert "NOT private" in result.stderr and summary["dp_seed"] == 4


def test_the_budget_stops_a_run_before_it_is_exceeded():
    ledger = PrivacyLedger(0.04, 1.0, 1e-5, budget=2.0, planned=10)
    assert ledger.allows(10)
    last = max(t for t in range(10, 400) if ledger.allows(t))
    assert ledger.epsilon(last) <= 2.0 < ledger.epsilon(last + 1)
    assert not ledger.allows(last + 1) and PrivacyLedger(0.04, 1.0, 1e-5).allows(10**6)


@pytest.mark.parametrize("algorithm, ranks", [("gossip", 3), ("easgd-async", 3)])
def test_every_family_trains_privately_with_per_node_noise(tmp_path, algorithm, ranks):
    records, _ = _summary(tmp_path, ranks, "--algorithm", algorithm, "--epochs", "2", "--dp", "autos",
                          "--dp-noise", "1.0", "--dp-sampling", "shuffle")
    summary = records[-1]
    assert summary["dp_guarantee"] == "per-node" and summary["dp_placement"] == "each"
    assert summary["epsilon_spent"] > 0 and summary["dp_sampling"] == "shuffle"


def test_the_noise_is_unseeded_unless_asked(tmp_path):
    """Without --dp-seed two identical runs differ; with it they repeat."""
    runs = {}
    for name, extra in [("a", ()), ("b", ()), ("c", ("--dp-seed", "1")), ("d", ("--dp-seed", "1"))]:
        records, _ = _summary(tmp_path, 1, "--epochs", "1", "--dp", "nsgd", "--dp-noise", "1", *extra, name=name)
        runs[name] = records[-1]["final_test_loss"]
    assert runs["a"] != runs["b"] and runs["c"] == runs["d"]


@pytest.mark.parametrize("args, complaint", [
    (["--dp-noise", "1", "--dp-epsilon", "3"], "together"),
    ([], "needs the noise"),
    (["--dp-noise", "1", "--dp-r", "0.1", "--dp", "dpsgd"], "dpsgd takes none"),
    (["--dp-noise", "1", "--algorithm", "lsgd"], "training losses"),
    (["--dp-noise", "1", "--local-optimizer", "adahessian"], "--local-optimizer sgd"),
    (["--dp-noise", "1", "--algorithm", "local", "--dp-placement", "one"], "central noise of sync"),
])
def test_bad_combinations_are_refused(args, complaint):
    values = {"dp": "psac"}
    for flag, value in zip(args[::2], args[1::2]):
        key = flag[2:].replace("-", "_")
        values[key] = value if key in ("algorithm", "local_optimizer", "dp_placement", "dp") else float(value)
    with pytest.raises(UsageError, match=complaint):
        TrainConfig(**values).validate()


@pytest.mark.parametrize("args, complaint", [
    (["--dp", "psac", "--dp-noise", "1", "--dp-epsilon", "3"], "--dp-noise and --dp-epsilon together"),
    (["--dp", "psac", "--dp-noise", "1", "--model", "cnn-bn"], "BatchNorm2d"),
    (["--dp", "psac", "--dp-noise", "1", "--dp-delta", "0.001"], "must be below 1/n"),
    (["--dp", "psac", "--dp-epsilon", "0.001"], "budget is too small"),
])
def test_bad_runs_end_every_rank_with_status_2(args, complaint):
    result = mpisgd(2, "train", "--epochs", "1", *args, timeout=120)
    assert result.returncode == 2 and complaint in result.stderr, result.output[-3000:]
    assert result.stderr.count("mpisgd: error:") == 1
