"""AsyVRSC-Distributed under real mpiexec (ALGORITHMS.md §9.5) and the ``optimize`` command line."""

import json

import pytest
from mpirun import PROGS, assert_mutation_fails, assert_ok, mpisgd, run_prog, top_level_imports


@pytest.mark.parametrize("ranks", [3, 4])
def test_distributed_snapshot_is_the_full_gradient(ranks):
    assert_ok(run_prog(ranks, "asyvrsc.py", "snapshot", timeout=60))


def test_one_worker_equals_sequential_svrg_bit_for_bit_and_the_mutation_fails():
    assert_ok(run_prog(2, "asyvrsc.py", "oracle", timeout=60))


def test_two_workers_match_the_reference_under_the_recorded_order_and_the_mutation_fails():
    """progs/oracle_asyvrsc.py: the numpy reference (§9, seeds reproduced, not imported) replays the master's
    arrival order; the master's x after every update matches to 1e-12; with the update a no-op it must not."""
    assert_ok(run_prog(3, "oracle_asyvrsc.py", timeout=90))
    assert_mutation_fails(run_prog(3, "oracle_asyvrsc.py", "--mutate", timeout=90), "differs from the reference")
    assert top_level_imports(PROGS / "_asyvrsc_reference.py") == {"numpy"}


def test_torch_vector_and_torch_problem_give_the_numpy_run():
    assert_ok(run_prog(2, "asyvrsc.py", "torch", timeout=90))


@pytest.mark.parametrize("spec,epochs", [("portfolio:pricing", 10), ("portfolio:crspday", 14)])
def test_linear_convergence_with_two_workers_and_bounded_delays(spec, epochs):
    assert_ok(run_prog(3, "asyvrsc.py", "converge", spec, str(epochs), timeout=90))


def test_optimize_writes_metrics_and_summary(tmp_path):
    metrics = tmp_path / "run.jsonl"
    result = mpisgd(3, "optimize", "--algorithm", "asyvrsc-distributed", "--problem", "portfolio:crspday",
                    "--epochs", "12", "--stop-at-target", "--target-gap", "1e-6", "--metrics", metrics, timeout=90)
    assert result.returncode == 0, result.output[-3000:]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["event"] for r in records[:2]] == ["start", "gap"] and records[-1]["event"] == "summary"
    gaps = [r for r in records if r["event"] == "gap"]
    assert [r["epoch"] for r in gaps] == list(range(len(gaps))) and gaps[0]["relative_gap"] == 1.0
    assert all(r["wall_s"] >= 0 and r["gap"] >= 0 for r in gaps)
    assert all(r["delay_max"] <= 1 for r in gaps[1:])
    summary = records[-1]
    assert summary["world_size"] == 3 and summary["target_gap"] == 1e-6
    assert summary["final_relative_gap"] <= 1e-6 and summary["final_relative_gap"] == gaps[-1]["relative_gap"]
    assert summary["time_to_gap_s"] == gaps[-1]["wall_s"] and summary["epochs_to_gap"] == gaps[-1]["epoch"]
    assert summary["delays"]["count"] == summary["steps"] and summary["delays"]["max"] <= 1
    assert set(summary["delays"]) == {"count", "mean", "p50", "p95", "max"}
    # mpisgd report plots the run's gap against time and epochs (and no training figures)
    from mpisgd.report.command import write_report

    written = {path.name for path in write_report([metrics], tmp_path / "report")}
    assert written == {"gap_vs_time.png", "gap_vs_epoch.png", "results.md"}, written


@pytest.mark.parametrize("args,message", [
    (["--algorithm", "asyvrsc-distributed", "--problem", "portfolio:nowhere"], "has no source 'nowhere'"),
    (["--algorithm", "asyvrsc-distributed", "--problem", "portfolio:pricing", "--eta", "-0.1"],
     "option eta must not be negative"),
    (["--algorithm", "csvrg", "--problem", "portfolio:pricing"], "csvrg is sequential"),
])
def test_optimize_bad_input_exits_2_with_one_line(args, message):
    result = mpisgd(2, "optimize", *args, timeout=60)
    assert result.returncode == 2, result.output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_train_refuses_a_composition_solver():
    result = mpisgd(1, "train", "--algorithm", "asyvrsc-distributed", timeout=60)
    assert result.returncode == 2 and "mpisgd optimize --algorithm asyvrsc-distributed" in result.stderr, result.output
