"""Smoke test of ``python -m mpisgd.bench privacy --quick``: 2 ranks, the report's shape, no timing asserted."""

import math

from mpisgd.train import load_dataset

from test_bench import load_report, positive, run_bench

RANKS = 2


def test_privacy_quick(tmp_path):
    """One epsilon (3), dpsgd and psac, one seed, 2 epochs, and the Opacus comparison (mlp, quick)."""
    path = tmp_path / "privacy.json"
    report = load_report(path, *run_bench("privacy", "--quick", "--ranks", RANKS, "--json", path))
    assert report["benchmark"] == "privacy"
    config, results, ratios = report["config"], report["results"], report["ratios"]
    assert config["ranks"] == RANKS and config["epsilons"] == [3.0] and config["rules"] == ["dpsgd", "psac"]
    n_train = load_dataset("digits", seed=0).info.n_train  # q = batch x ranks / n (the harness's training split)
    runs = results["runs"]
    assert [(r["rule"], r["epsilon_target"]) for r in runs] == [("non-private", None), ("dpsgd", 3.0),
                                                               ("psac", 3.0)]
    for row in runs:
        assert 0 <= row["accuracy"] <= 1 and positive(row["wall_s"]) and row["seed"] == 0
        if row["rule"] == "non-private":
            assert row["epsilon_spent"] is None and row["noise_multiplier"] is None
            continue
        assert 0 < row["epsilon_spent"] <= 3.0 + 1e-9, row  # the planned steps spend at most the target
        assert positive(row["noise_multiplier"])
        assert math.isclose(row["sample_rate"], config["batch_size"] * RANKS / n_train, rel_tol=1e-12)
    table = {(t["epsilon_target"], t["rule"]): t for t in results["table"]}
    assert set(table) == {(None, "non-private"), (3.0, "dpsgd"), (3.0, "psac")}
    assert table[(3.0, "psac")]["accuracy_mean"] == runs[2]["accuracy"] and table[(3.0, "psac")]["seeds"] == 1
    # the same epsilon, q and steps: the same planned noise multiplier for every rule
    assert table[(3.0, "psac")]["noise_multiplier"] == table[(3.0, "dpsgd")]["noise_multiplier"]
    (claim,) = results["claim"]
    assert claim["versus"] == "dpsgd" and claim["verdict"] == "one seed: no verdict"
    assert abs(claim["mean_difference"] - (runs[2]["accuracy"] - runs[1]["accuracy"])) < 1e-12
    assert abs(ratios["accuracy_psac_minus_dpsgd"]["eps=3"] - 100 * claim["mean_difference"]) < 1e-9
    opacus = results["opacus"]["mlp"]
    for variant in ("mpisgd", "opacus", "plain"):
        assert positive(opacus[variant]["steps_per_s"]) and 0 <= opacus[variant]["accuracy"] <= 1
    assert math.isclose(opacus["sample_rate"], runs[1]["sample_rate"], rel_tol=1e-12)  # the same q on one rank
    assert opacus["noise_multiplier"] == runs[1]["noise_multiplier"]
    assert set(ratios["steps_mpisgd_over_opacus"]) == {"mlp"} and positive(ratios["steps_mpisgd_over_opacus"]["mlp"])
    assert positive(ratios["dp_over_plain_mpisgd"]["mlp"])
    assert report["goals"] == {"steps_mpisgd_over_opacus": 1.0}


def test_privacy_bad_rule():
    """A rule that does not exist: one line, status 2, before any launch."""
    returncode, _, stderr = run_bench("privacy", "--quick", "--rules", "dpsgd,clipall", "--ranks", RANKS)
    assert returncode == 2 and "--rules" in stderr and "clipall" in stderr, stderr
