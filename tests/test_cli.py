"""The command line under real mpiexec: every dataset and model, metrics records, help."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mpirun import ROOT, mpisgd

REQUIRED = {"event", "algorithm", "rank", "world_size", "step", "epoch", "wall_s", "loss", "accuracy",
            "bytes_sent", "comm_wait_s"}


def records(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "ranks, args",
    [
        (1, ["--model", "logreg", "--epochs", "3"]),
        (2, ["--model", "cnn", "--epochs", "2", "--partition", "dirichlet:0.5", "--log-every", "5"]),
        (4, ["--model", "mlp", "--epochs", "3", "--target-accuracy", "0.5"]),
        (2, ["--dataset", "synthetic", "--samples", "2000", "--features", "20", "--classes", "4", "--epochs", "2"]),
        (2, ["--dataset", "synthetic-ratings", "--model", "mf", "--epochs", "2", "--lr", "0.5", "--hidden", "8"]),
        (2, ["--dataset", "movielens", "--model", "mf", "--epochs", "1", "--batch-size", "1024", "--lr", "2"]),
    ],
    ids=["logreg-1", "cnn-dirichlet-2", "mlp-target-4", "synthetic-2", "synthetic-ratings-2", "movielens-2"],
)
def test_train_runs_and_writes_metrics(tmp_path, ranks, args):
    path = tmp_path / "metrics.jsonl"
    result = mpisgd(ranks, "train", "--metrics", path, *args, timeout=240)
    assert result.returncode == 0, result.output[-3000:]
    assert "final test accuracy" in result.stdout
    lines = records(path)
    assert lines[0]["event"] == "start"
    epochs = [r for r in lines if r["event"] == "epoch"]
    assert epochs and all(REQUIRED <= set(r) for r in epochs)
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["world_size"] == ranks
    for key in ("final_accuracy", "wall_s", "bytes_sent", "comm_wait_s", "time_to_accuracy_s"):
        assert key in summary
    assert len(summary["bytes_sent_per_rank"]) == ranks
    assert (summary["bytes_sent"] > 0) == (ranks > 1)
    assert 0 <= summary["final_accuracy"] <= 1
    if "--log-every" in args:
        assert any(r["event"] == "step" for r in lines)
    if "--target-accuracy" in args:
        assert summary["time_to_accuracy_s"] is not None and summary["final_accuracy"] > 0.5
    if "mf" in args:
        assert "final_rmse" in summary


def test_sync_on_digits_learns(tmp_path):
    """The demo's configuration (fewer epochs) reaches a useful accuracy on 4 ranks."""
    path = tmp_path / "m.jsonl"
    result = mpisgd(4, "train", "--epochs", "6", "--quiet", "--metrics", path, timeout=240)
    assert result.returncode == 0, result.output[-3000:]
    assert result.stdout == ""  # --quiet
    assert records(path)[-1]["final_accuracy"] > 0.8


def test_metrics_file_is_appended_not_overwritten(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"event": "earlier run"}\n')
    assert mpisgd(1, "train", "--epochs", "1", "--quiet", "--metrics", path).returncode == 0
    assert records(path)[0] == {"event": "earlier run"}


def test_help_lists_the_options():
    result = subprocess.run([sys.executable, "-m", "mpisgd", "train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--algorithm", "--model", "--dataset", "--epochs", "--batch-size", "--lr", "--momentum",
                 "--seed", "--partition", "--metrics", "--eval-every", "--target-accuracy", "--quiet",
                 "--bucket-mb"):
        assert flag in result.stdout, flag


def test_console_script():
    script = Path(sys.executable).parent / "mpisgd"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout
