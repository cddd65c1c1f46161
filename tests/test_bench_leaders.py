"""Smoke test of ``python -m mpisgd.bench leaders``: 2 ranks, --quick, no timing assertions.

The benchmark is started the way users type it (it re-launches itself
under mpiexec); the test checks the report's structure, that sync, easgd
and lsgd each really trained (with their own options and communication),
and the suite's page renders it with its claim.
"""

import json
import math

import pytest
from test_bench import RANKS, load_report, run_bench


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_leaders_smoke(tmp_path):
    path = tmp_path / "leaders.json"
    report = load_report(path, *run_bench("leaders", "--quick", "--ranks", RANKS, "--json", path))
    assert report["benchmark"] == "leaders"
    config, results, ratios = report["config"], report["results"], report["ratios"]
    assert config["model"] == "cnn" and config["ranks"] == RANKS and config["lr"] == 0.1
    assert set(results) == {"sync", "easgd", "lsgd"}
    assert set(ratios) == {"tta_easgd_over_lsgd", "tta_sync_over_lsgd", "iter_easgd_over_lsgd",
                           "iter_sync_over_lsgd", "final_lsgd_minus_easgd", "final_lsgd_minus_sync"}
    for key, value in ratios.items():  # tta: null only when a target was not reached
        if key.startswith("final_"):
            assert -1 <= value <= 1, (key, value)
        else:
            assert positive(value) or (value is None and key.startswith("tta_")), (key, value)
    # the paper's defaults reached the algorithms (one group of 4 or fewer ranks: a single leader)
    assert results["lsgd"]["options"] == {"period": 1, "global_period": 4, "pull": 0.1, "global_pull": 0.1,
                                          "group_size": 0, "loss_window": 1}
    assert results["easgd"]["options"] == {"period": 4, "moving_rate": 0.43}
    assert config["nesterov"] is True and config["weight_decay"] == 1e-4
    for name, entry in results.items():
        for key in ("iter_s", "train_s", "wall_s", "bytes_sent", "final_accuracy"):
            assert positive(entry[key]), (name, key, entry[key])
        assert entry["time_to_accuracy_s"] is None or positive(entry["time_to_accuracy_s"])
        assert len(entry["runs"]) == config["repeats"]
        assert entry["steps"] == config["epochs"] * config["steps_per_epoch"]
        assert entry["final_accuracy"] > 0.3, (name, entry["final_accuracy"])  # 10 classes: chance is 0.1
    # each algorithm communicated its own way: sync an all-reduce every step, lsgd one broadcast every step
    # (a model from one rank), easgd an all-reduce every 4 steps
    sent = {name: entry["bytes_sent"] for name, entry in results.items()}
    assert sent["easgd"] < sent["lsgd"] < sent["sync"], sent
    # the results page of the suite renders it, with the paper's claim
    from mpisgd.bench.results import write_results

    suite, doc = tmp_path / "suite", tmp_path / "docs" / "results.md"
    suite.mkdir()
    (suite / "leaders-4.json").write_text(path.read_text())
    write_results(suite, doc, {"leaders-4": {"command": "python -m mpisgd.bench leaders", "status": 0, "seconds": 1}})
    page = doc.read_text()
    assert "| lsgd | period 1, global_period 4" in page and "| easgd |" in page and "`tta_easgd_over_lsgd`" in page
    assert "epochs to accuracy" in page
    assert page.count("- Goal:") == 1 and "Regime:" in page
    assert json.loads((tmp_path / "docs" / "results" / "leaders-4.json").read_text())["benchmark"] == "leaders"


@pytest.mark.parametrize("flags, message", [
    (["--pull", "0.7"], "--pull must be in (0, 0.5]"),
    (["--moving-rate", "0"], "--moving-rate in (0, 1]"),
    (["--global-period", "0"], "--global-period must be at least 1"),
    (["--group-size", "-1"], "--group-size must be 0"),
])
def test_bad_values_are_one_line_and_status_2(flags, message):
    code, stdout, stderr = run_bench("leaders", "--quick", *flags, timeout=60)
    assert code == 2 and stdout == "", (code, stdout)
    assert stderr.count("\n") == 1 and message in stderr, stderr
