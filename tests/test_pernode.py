"""Per-node accuracy: each training rank's own model on the whole test set before the final average.

Real trainings under mpiexec (digits): gossip on a Dirichlet 0.1 partition (the nodes' models differ),
sync (one model: no per-node figures), easgd-async with one server (the workers' models only); then
``mpisgd report`` on their metrics files. Oracles from the spec: the mean and the population standard
deviation of the listed accuracies; an accuracy on the whole digits test set is a multiple of 1/n_test.
"""

import json
import math
from argparse import Namespace

import numpy as np
import pytest
from mpirun import mpisgd

from mpisgd.report import report_main
from mpisgd.train import evaluate

NODE_KEYS = ("node_ranks", "node_accuracy", "node_accuracy_mean", "node_accuracy_std", "node_accuracy_min",
             "node_accuracy_max")
RUNS = {  # name: (ranks, extra options)
    "gossip": (3, ["--algorithm", "gossip", "--partition", "dirichlet:0.1"]),
    "sync": (2, ["--algorithm", "sync"]),
    "easgd-async": (3, ["--algorithm", "easgd-async", "--partition", "dirichlet:0.1"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (records of the metrics file, printed output, metrics path)."""
    directory = tmp_path_factory.mktemp("pernode")
    found = {}
    for name, (ranks, options) in RUNS.items():
        path = directory / f"{name}.jsonl"
        result = mpisgd(ranks, "train", *options, "--dataset", "digits", "--epochs", "2", "--seed", "1",
                        "--metrics", path, "--no-progress", timeout=180)
        assert result.returncode == 0, result.output[-3000:]
        records = [json.loads(line) for line in path.read_text().splitlines()]
        found[name] = (records, result.stdout, path)
    return found


def parts(records):
    start = next(r for r in records if r["event"] == "start")
    final = [r for r in records if r["event"] == "epoch"][-1]
    return start, final, records[-1]


def check_whole_test_set(accuracies, n_test):
    """Each accuracy counts correct answers out of the whole test set (a slice would give other fractions)."""
    for accuracy in accuracies:
        assert math.isclose(accuracy * n_test, round(accuracy * n_test), abs_tol=1e-6), (accuracy, n_test)


def check_fields(record, ranks, n_test):
    assert all(key in record for key in NODE_KEYS), sorted(record)
    assert record["node_ranks"] == ranks
    values = record["node_accuracy"]
    assert len(values) == len(ranks)
    assert record["node_accuracy_mean"] == pytest.approx(sum(values) / len(values), abs=1e-12)
    mean = sum(values) / len(values)
    assert record["node_accuracy_std"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
                                                        abs=1e-12)
    assert record["node_accuracy_min"] == min(values) and record["node_accuracy_max"] == max(values)
    assert record["node_accuracy_min"] <= record["node_accuracy_mean"] <= record["node_accuracy_max"]
    check_whole_test_set(values, n_test)


def test_test_rows_are_the_array_split_slices():
    for n, size in ((359, 3), (360, 4), (5, 7), (10, 1)):
        for rank in range(size):
            rows = evaluate.test_rows(n, False, rank, size)
            assert list(range(n)[rows]) == list(np.array_split(np.arange(n), size)[rank])
        assert evaluate.test_rows(n, True, size - 1, size) == slice(0, n)


def test_gossip_reports_the_nodes_own_accuracy(runs):
    records, printed, _ = runs["gossip"]
    start, final, summary = parts(records)
    for record in (final, summary):
        check_fields(record, [0, 1, 2], start["n_test"])
    assert summary["node_accuracy"] == final["node_accuracy"]
    # non-IID nodes: their own models are not the averaged one (the final accuracy)
    assert summary["node_accuracy_max"] > summary["node_accuracy_min"]
    assert summary["node_accuracy_mean"] != summary["final_accuracy"]
    assert any(value != summary["final_accuracy"] for value in summary["node_accuracy"])
    assert f"per-node accuracy     {summary['node_accuracy_mean']:.4f} +- {summary['node_accuracy_std']:.4f}" in printed
    assert "node_accuracy_by_epoch" not in summary  # synchronous ranks: no per-node figures mid-run


def test_sync_has_no_spread(runs):
    records, printed, _ = runs["sync"]
    _, final, summary = parts(records)
    assert not [key for key in (*final, *summary) if key.startswith("node_")]
    assert "per-node accuracy" not in printed


def test_master_worker_reports_the_workers_only(runs):
    records, printed, _ = runs["easgd-async"]
    start, final, summary = parts(records)
    assert summary["servers"] == 1
    for record in (final, summary):
        check_fields(record, [1, 2], start["n_test"])  # rank 0 serves: no model of its own
    assert "2 nodes' own models" in printed
    # asynchronous workers evaluate their own model mid-run: the spread of those, gathered at the end
    by_epoch = summary["node_accuracy_by_epoch"]
    assert [point["epoch"] for point in by_epoch] == [1] and by_epoch[0]["nodes"] == 2
    point = by_epoch[0]
    assert point["min"] <= point["mean"] <= point["max"] and point["std"] >= 0
    assert point["mean"] == pytest.approx((point["min"] + point["max"]) / 2)  # two nodes
    check_whole_test_set([point["min"], point["max"]], start["n_test"])


def test_report_shows_per_node_accuracy(runs, tmp_path):
    out = tmp_path / "report"
    assert report_main(Namespace(runs=[runs[name][2] for name in RUNS], out=out)) == 0
    markdown = (out / "results.md").read_text()
    assert "## Per-node accuracy" in markdown
    table = markdown.split("## Per-node accuracy")[1].split("\n\n")[1]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table.splitlines()[2:]]
    expected = []
    for name in ("gossip", "easgd-async"):  # sync: none
        s = runs[name][0][-1]
        expected.append([name, name, f"{s['final_accuracy']:.4f}",
                         f"{s['node_accuracy_mean']:.4f} ± {s['node_accuracy_std']:.4f}",
                         f"{s['node_accuracy_min']:.4f} – {s['node_accuracy_max']:.4f}", str(len(s['node_ranks']))])
    assert rows == expected


def test_report_plots_the_nodes(runs):
    from matplotlib.container import ErrorbarContainer

    from mpisgd.report.plots import draw
    from mpisgd.report.runs import read_file

    loaded = [read_file(runs[name][2])[0] for name in RUNS]
    for x in ("time", "bytes"):
        axes = draw(loaded, list(RUNS), "accuracy", x).axes[0]
        bars = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 2  # gossip and easgd-async, not sync
        means = sorted(y for bar in bars for y in bar.lines[0].get_ydata())
        s = {name: runs[name][0][-1] for name in RUNS}
        assert means == pytest.approx(sorted([s["gossip"]["node_accuracy_mean"],
                                              s["easgd-async"]["node_accuracy_by_epoch"][0]["mean"],
                                              s["easgd-async"]["node_accuracy_mean"]]))
        assert "nodes' own models: mean ± std" in [t.get_text() for t in axes.get_legend().get_texts()]
    assert not draw(loaded, list(RUNS), "loss", "time").axes[0].containers
