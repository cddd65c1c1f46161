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


def test_flags_and_defaults_come_from_train_config():
    """Every TrainConfig field is a flag; no flags given: exactly TrainConfig's defaults."""
    from dataclasses import fields

    from mpisgd.cli import build_parser, config_from_args
    from mpisgd.train import TrainConfig

    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for spec in fields(TrainConfig):
        names = spec.metadata["keys"] or ([] if spec.name == "algorithm_options" else [spec.name])
        for name in names:
            assert "--" + name.replace("_", "-") in help_text, name
    assert config_from_args(parser.parse_args(["train"])) == TrainConfig()
    given = config_from_args(parser.parse_args(["train", "--epochs", "3", "--time-budget", "2.5", "--no-progress",
                                                "--samples", "100", "--nesterov", "--period", "7",
                                                "--algorithm", "local"]))
    assert (given.epochs, given.time_budget, given.progress, given.nesterov) == (3, 2.5, False, True)
    assert given.data_options == {"samples": 100} and given.algorithm_options == {"period": 7}


@pytest.mark.parametrize("fields, message", [
    ({"epochs": 0}, "--epochs must be at least 1, got 0"),
    ({"momentum": 1.0}, "--momentum must be in [0, 1), got 1.0"),
    ({"dtype": "float16"}, "--dtype must be float32 or float64, got float16"),
    ({"model": "resnet"}, "--model must be logreg, mlp, cnn, cnn-bn or mf, got resnet"),
    ({"time_budget": 0.0}, "--time-budget must be positive, got 0.0"),
    ({"target_accuracy": 1.5}, "--target-accuracy must be in (0, 1], got 1.5"),
    ({"nesterov": True, "momentum": 0.0}, "--nesterov needs --momentum > 0"),
    ({"stop_at_target": True}, "--stop-at-target needs --target-accuracy"),
    ({"slow_factor": 2.0}, "--slow-factor needs --slow-ranks"),
    ({"slow_ranks": "1,x"}, "--slow-ranks must be rank numbers separated by commas"),
    ({"algorithm": "eamsgd", "momentum": 0.9}, "eamsgd carries its own momentum around a plain SGD step"),
    ({"algorithm": "eamsgd-async", "momentum": 0.5}, "eamsgd-async carries its own momentum"),
    ({"algorithm": "eamsgd", "local_optimizer": "adahessian"}, "eamsgd carries its own momentum"),
    ({"algorithm": "easgd", "nesterov": True}, "--nesterov needs --momentum > 0"),
])
def test_config_checks_from_field_metadata(fields, message):
    from mpisgd.errors import UsageError
    from mpisgd.train import TrainConfig

    with pytest.raises(UsageError) as caught:
        TrainConfig(**fields).validate()
    assert str(caught.value).startswith(message), caught.value


def test_slow_links_are_not_a_cli_flag():
    """Slow links come from the emulated cluster (or a throttle from Python), not from the CLI."""
    result = mpisgd(2, "train", "--quiet", "--slow-ranks", "1", "--slow-link-mbps", "20", timeout=60)
    assert result.returncode == 2, result.output[-2000:]
    assert "unrecognized arguments: --slow-link-mbps 20" in result.stderr
    assert result.stderr.count("error:") == 1


@pytest.mark.parametrize("algorithm", ["sync", "gossip"])
def test_a_throttle_needs_an_asynchronous_algorithm_on_every_rank(algorithm):
    """``run(config, throttle=...)`` on one rank with sync (no messenger) or pairwise gossip (no
    outbox traffic): UsageError on every rank."""
    from mpirun import assert_ok, run_prog

    result = run_prog(2, "train_throttled.py", algorithm, "--expect-usage-error", timeout=120)
    assert_ok(result)
    assert "rank 0: UsageError" in result.stdout and "rank 1: UsageError" in result.stdout
