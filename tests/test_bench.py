"""Smoke tests of ``python -m mpisgd.bench``: tiny sizes, 2 ranks, no timing assertions.

Each benchmark is started the way users type it (outside MPI, so it
re-launches itself under mpiexec) in its own process group, killed on
timeout; the tests check the JSON report's shape and that every figure is
a positive number.
"""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mpisgd.bench import launch

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
RANKS = 2


def run_bench(*args, timeout=TIMEOUT, env=None):
    """Run ``python -m mpisgd.bench ARGS`` in a new session; kill the whole group on timeout."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MPISGD_BENCH_")}
    environment.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "mpisgd.bench", *map(str, args)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"timed out after {timeout} s\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return process.returncode, stdout, stderr


def load_report(path, returncode, stdout, stderr, ranks=RANKS):
    assert returncode == 0, f"exit {returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert path.exists(), f"no JSON written\n{stderr[-3000:]}"
    report = json.loads(path.read_text())
    assert json.loads(stdout) == report, "rank 0 must print the same JSON it writes"
    for key in ("benchmark", "command", "launched_as", "machine", "config", "results", "ratios", "goals"):
        assert key in report, key
    machine = report["machine"]
    assert machine["ranks"] == ranks
    for key in ("hostname", "cpu_count", "mpi_library", "torch", "mpi4py"):
        assert machine[key], key
    assert "mpisgd.bench" in report["command"] and f"-n {ranks}" in report["launched_as"]
    return report


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_allreduce_smoke(tmp_path):
    path = tmp_path / "out" / "allreduce.json"
    report = load_report(path, *run_bench("allreduce", "--quick", "--ranks", RANKS, "--sizes", "1000,5000",
                                          "--json", path))
    assert report["benchmark"] == "allreduce"
    sizes = ["1000", "5000"]
    assert set(report["ratios"]) == {"bucketed_over_raw", "bucketed_over_raw_average",
                                     "bucketed_over_iallreduce_average"}
    for values in report["ratios"].values():
        assert sorted(values) == sizes and all(positive(v) for v in values.values())
    assert [entry["floats"] for entry in report["results"]] == [1000, 5000]
    for entry in report["results"]:
        for variant in ("bucketed", "raw", "raw_average", "iallreduce_average"):
            assert positive(entry[variant]["bytes_per_s"]) and positive(entry[variant]["median_s"])
            assert entry[variant]["samples"] == report["config"]["repeats"]


def test_sync_smoke(tmp_path):
    path = tmp_path / "sync.json"
    report = load_report(path, *run_bench("sync", "--quick", "--ranks", RANKS, "--json", path))
    assert report["benchmark"] == "sync"
    for key in ("sync_over_handwritten", "sync_over_ddp_gloo"):
        assert sorted(report["ratios"][key]) == ["digits", "large", "small"]
        assert all(positive(v) for v in report["ratios"][key].values())
    # the digits MLP 64-256-10 keeps its size under --quick: its ~1 ms step shows per-step Python work
    assert {e["model"]: e["parameters"] for e in report["results"]}["digits"] == 64 * 256 + 256 + 256 * 10 + 10
    for entry in report["results"]:
        assert entry["parameters"] > 0
        for variant in ("sync", "handwritten", "ddp_gloo"):
            assert positive(entry[variant]["steps_per_s"])
        # every variant really trains data-parallel: identical parameters on all ranks
        agreement = entry["agreement"]
        limit = 1e-5 * max(agreement["max_abs_param"], 1.0)
        assert all(d <= limit for d in agreement["max_abs_diff_across_ranks"].values()), agreement


def test_overlap_smoke(tmp_path):
    path = tmp_path / "overlap.json"
    report = load_report(path, *run_bench("overlap", "--quick", "--ranks", RANKS, "--json", path))
    assert report["benchmark"] == "overlap"
    assert set(report["ratios"]) == {"iter_sync_over_cocod", "tta_sync_over_cocod",
                                     "iter_local_over_cocod", "tta_local_over_cocod", "iter_cocod_over_bound"}
    bound = report["results"]["cocod"]["overlap_bound"]
    assert bound["bound_s_per_iter"] == max(bound["compute_s_per_step"], bound["allreduce_s"] / 4)
    for key, value in report["ratios"].items():  # tta: null only when a target was not reached
        assert positive(value) or (value is None and key.startswith("tta_")), (key, value)
    config = report["config"]
    assert config["period"] == 4 and config["repeats"] >= 2 and config["ranks"] == RANKS
    assert set(report["results"]) == {"sync", "local", "cocod"}
    for name, entry in report["results"].items():
        for key in ("iter_s", "wall_per_iter_s", "train_s", "wall_s", "bytes_sent", "final_accuracy"):
            assert positive(entry[key]), (name, key, entry[key])
        for key in ("comm_wait_s", "comm_progress_s"):
            assert entry[key] >= 0, (name, key)
        assert entry["iter_s"] <= entry["wall_per_iter_s"]  # evaluations excluded
        assert entry["time_to_accuracy_s"] is None or positive(entry["time_to_accuracy_s"])
        assert len(entry["runs"]) == config["repeats"]
        assert entry["steps"] == config["epochs"] * config["steps_per_epoch"]
    bytes_sent = {name: entry["bytes_sent"] for name, entry in report["results"].items()}
    assert bytes_sent["local"] < bytes_sent["sync"] and bytes_sent["cocod"] < bytes_sent["sync"]
    # the results page of the reproduction suite, from this real report
    from mpisgd.bench.results import write_results

    suite, doc = tmp_path / "suite", tmp_path / "docs" / "results.md"
    suite.mkdir()
    (suite / "cocod-1g.json").write_text(path.read_text())
    write_results(suite, doc, {"cocod-1g": {"command": "python -m mpisgd.bench overlap", "status": 0, "seconds": 1}})
    page = doc.read_text()
    assert "## 1a. CoCoD-SGD against sync and Local SGD" in page and "| cocod |" in page
    assert page.count("- Goal:") == 1 and "`tta_sync_over_cocod`" in page


def test_suite_refuses_unknown_experiments():
    result = subprocess.run([sys.executable, "-m", "mpisgd.bench.suite", "--only", "cocod-1g,nope"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and "unknown experiment(s) nope" in result.stderr, result.stderr


@pytest.mark.parametrize("benchmark", ["overlap", "stragglers", "gossip"])
@pytest.mark.parametrize("flags, message", [
    (["--straggler", "1:100mbit,5ms"], "--straggler and --stragglers need --network"),
    (["--network", "1gbit"], "expected RATE,DELAY"),
    (["--network", "1gbit,1ms", "--straggler", "node1:100mbit,5ms"], "expected HOST:RATE,DELAY"),
])
def test_bad_emulated_cluster_flags(benchmark, flags, message):
    """Bad --network/--straggler values stop with status 2 and a message, before anything is launched."""
    code, stdout, stderr = run_bench(benchmark, *flags, timeout=60)
    assert code == 2 and stdout == "" and message in stderr, stderr
    assert "[mpisgd.bench]" not in stderr  # no training started


def test_emulated_cluster_flags_refused_under_a_launcher():
    """Under mpiexec the flags cannot start their own cluster: status 2, a message, no rank left behind."""
    from mpirun import mpiexec

    result = mpiexec(2, ["-m", "mpisgd.bench", "gossip", "--quick", "--network", "1gbit,1ms"], timeout=60)
    assert result.returncode != 0 and "type the benchmark in a plain shell" in result.stderr, result.output[-2000:]


def test_stragglers_smoke(tmp_path):
    path = tmp_path / "stragglers.json"
    report = load_report(path, *run_bench("stragglers", "--quick", "--ranks", RANKS, "--slow-ranks", RANKS - 1,
                                          "--peers", 1, "--fragments", "1,2", "--partition", "dirichlet:0.5",
                                          "--json", path))
    assert report["benchmark"] == "stragglers"
    sweep = ("divshare-J1-O1", "divshare-J1-O2")  # DivShare's (J, Omega) sweep: one variant per pair
    assert set(report["ratios"]) == {f"tta_{o}_over_{d}" for o in ("adpsgd", "swift") for d in sweep}
    for key, value in report["ratios"].items():  # null only when a target was not reached
        assert value is None or positive(value), (key, value)
    config = report["config"]
    assert config["ranks"] == RANKS and config["slow_ranks"] == str(RANKS - 1) and config["repeats"] >= 2
    assert config["slow_factor"] == 4.0 and config["slow_link_mbps"] == 5.0 and positive(config["time_budget"])
    assert config["partition"] == "dirichlet:0.5" and config["divshare"]["divshare-J1-O2"] == {"peers": 1, "fragments": 2}
    assert set(report["results"]) == {*sweep, "adpsgd", "swift"}
    for name, entry in report["results"].items():
        for key in ("wall_s", "bytes_sent", "final_accuracy", "steps", "delivery", "staleness_s"):
            assert positive(entry[key]), (name, key, entry[key])
        assert 0 < entry["delivery"] <= 1, (name, entry["delivery"])
        assert entry["time_to_accuracy_s"] is None or positive(entry["time_to_accuracy_s"])
        assert len(entry["runs"]) == config["repeats"]
        for run in entry["runs"]:
            assert len(run["delivery_per_rank"]) == RANKS and len(run["staleness_per_rank"]) == RANKS
        assert entry["epochs"] < config["epochs"]  # the time budget, not the epochs, ended the runs
        spread = entry["step_s_ranks"]  # every rank's wall time per step
        assert 0 < spread["min"] <= spread["median"] <= spread["max"], spread
    # the results page's sweep section, from this real report: one row per variant, a verdict per DivShare cell
    from mpisgd.bench.results import write_results

    suite, doc = tmp_path / "suite", tmp_path / "docs" / "results.md"
    suite.mkdir()
    (suite / "divshare-sweep-digits-iid.json").write_text(path.read_text())
    write_results(suite, doc, {"divshare-sweep-digits-iid": {"command": "python -m mpisgd.bench stragglers",
                                                             "status": 0, "seconds": 1}})
    page = doc.read_text()
    assert "## 10a. DivShare's J and Ω sweep" in page and "Regime: here: 16 emulated hosts" in page
    rows = [line for line in page.splitlines() if line.startswith("| divshare-J1-O")]
    assert len(rows) == 2 and all("sooner" in row or "reached" in row for row in rows), rows
    assert "- Verdict: DivShare reached the target sooner than AD-PSGD in" in page and "of 2 (J, Ω) cells" in page


def test_failures_smoke(tmp_path):
    """3 ranks: easgd on ranks 0-1, the master-worker runs with server 0 and workers 1-2; rank 1 the
    (compute) straggler, rank 2 silent from its step 8 (lost after 2 s)."""
    path = tmp_path / "failures.json"
    report = load_report(path, *run_bench("failures", "--quick", "--ranks", 3, "--json", path), ranks=3)
    assert report["benchmark"] == "failures"
    ratios = report["ratios"]
    assert set(ratios) == {"tta_sync_over_async", "accuracy_dw_minus_plain", "accuracy_dw_minus_async"}
    assert ratios["tta_sync_over_async"] is None or positive(ratios["tta_sync_over_async"]), ratios
    results, config = report["results"], report["config"]
    for key in ("accuracy_dw_minus_plain", "accuracy_dw_minus_async"):  # points: 100 x the accuracy difference
        name = "easgd-dw-plain" if key.endswith("plain") else "easgd-async-silent"
        expected = 100 * (results["easgd-dw"]["final_accuracy"] - results[name]["final_accuracy"])
        assert abs(ratios[key] - expected) < 1e-9, (key, ratios[key], expected)
    assert config["workers"] == 2 and config["slow_ranks"] == "1" and config["silent_rank"] == 2
    assert "compute" in config["straggler_emulation"] and config["emulated_cluster"] is None
    assert set(results) == {"easgd", "easgd-async", "easgd-dw", "easgd-dw-plain", "easgd-async-silent"}
    for name, entry in results.items():
        assert 0 < entry["final_accuracy"] <= 1 and positive(entry["wall_s"]), (name, entry)
        assert entry["wall_s"] < 3 * config["time_budget"], (name, entry["wall_s"])  # no stall
        assert entry["lost_workers"] == (1 if name in ("easgd-dw", "easgd-dw-plain", "easgd-async-silent") else 0)
        assert len(entry["runs"]) == config["repeats"]
    for name in ("easgd-dw", "easgd-dw-plain"):
        assert results[name]["periods"] >= 1 and results[name]["closed_by_deadline"] >= 1, results[name]
    assert positive(results["easgd-async"]["time_to_accuracy_s"])  # the server's mid-run evaluations


def test_gossip_smoke(tmp_path):
    path = tmp_path / "gossip.json"
    report = load_report(path, *run_bench("gossip", "--quick", "--ranks", RANKS, "--json", path))
    assert report["benchmark"] == "gossip"
    variants = ("elastic_gossip", "gossip", "elastic_gossip_sparse", "gossip_sparse")
    assert set(report["ratios"]) == ({f"bytes_sync_over_{v}" for v in variants}
                                     | {f"accuracy_{v}_minus_sync" for v in variants})
    for key, value in report["ratios"].items():
        if key.startswith("bytes_"):
            assert positive(value), (key, value)
        else:
            assert -1 <= value <= 1, (key, value)
    results = report["results"]
    config = report["config"]
    assert set(results) == {"sync", "elastic-gossip", "gossip", "elastic-gossip-sparse", "gossip-sparse"}
    for name, entry in results.items():
        for key in ("wall_s", "bytes_sent", "final_accuracy"):
            assert positive(entry[key]), (name, key, entry[key])
        assert entry["epochs"] == config["epochs"] and len(entry["runs"]) == config["repeats"]
    assert results["gossip-sparse"]["options"]["gossip_prob"] == 0.25
    # sparser gossip sends fewer bytes than the same algorithm's defaults
    assert results["gossip-sparse"]["bytes_sent"] < results["gossip"]["bytes_sent"]
    assert results["elastic-gossip-sparse"]["bytes_sent"] < results["elastic-gossip"]["bytes_sent"]


def test_scaling_smoke_keeps_metrics(tmp_path):
    """Two model sizes, four algorithms: figures per size, ratios over sync, one metrics file per run."""
    path, metrics = tmp_path / "scaling.json", tmp_path / "metrics"
    report = load_report(path, *run_bench("scaling", "--quick", "--ranks", RANKS, "--json", path,
                                          "--metrics-dir", metrics))
    algorithms = ("sync", "local", "cocod", "divshare")
    assert [entry["size"] for entry in report["results"]] == [1e3, 1e4]
    for entry in report["results"]:
        assert abs(entry["parameters"] - entry["size"]) / entry["size"] < 0.1, entry["parameters"]
        for name in algorithms:
            assert positive(entry[name]["iter_s"]) and positive(entry[name]["bytes_per_step"]), (name, entry)
        assert entry["local"]["bytes_per_step"] < entry["sync"]["bytes_per_step"]
        assert len(list((metrics / f"parameters-{entry['size']:g}").glob("*.jsonl"))) == len(algorithms)
    assert set(report["ratios"]) == {f"{kind}_sync_over_{name}" for kind in ("iter", "bytes")
                                     for name in algorithms[1:]}


def test_world_size_mismatch_is_an_error():
    """A job whose world is smaller than --ranks (launcher/library mismatch) must refuse to run."""
    code, stdout, stderr = run_bench("allreduce", "--quick", "--ranks", RANKS, timeout=60,
                                     env={launch.LAUNCHED_ENV: "1"})
    assert code != 0 and stdout == ""
    assert f"asked for {RANKS} MPI ranks but MPI.COMM_WORLD has 1" in stderr


def test_missing_launcher_is_an_error():
    code, _, stderr = run_bench("allreduce", "--quick", "--mpiexec", "/nonexistent/mpiexec", timeout=60)
    assert code == 2 and "is not an executable" in stderr


def test_timeout_kills_the_job():
    """The re-launched job is killed (whole process group) when --timeout expires; exit status 124."""
    code, _, stderr = run_bench("sync", "--quick", "--ranks", RANKS, "--timeout", 1, timeout=60)
    assert code == 124 and "timed out after 1 s, job killed" in stderr


@pytest.mark.parametrize(
    "env, requested, world, expected",
    [
        ({}, None, 1, ("relaunch", launch.DEFAULT_RANKS)),
        ({}, 3, 1, ("relaunch", 3)),
        ({}, 1, 1, ("run", 1)),
        ({}, None, 4, ("run", 4)),
        ({"PMI_SIZE": "4"}, None, 1, ("run", 4)),  # under a launcher: never re-launch, check the size
        ({launch.LAUNCHED_ENV: "1"}, 2, 1, ("run", 2)),
    ],
)
def test_plan(monkeypatch, env, requested, world, expected):
    for name in (*launch._SIZE_VARS, *launch._RANK_VARS, launch.LAUNCHED_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launch.plan(requested, world) == expected
