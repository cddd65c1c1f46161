"""GPU readiness: the check program of ``make gpu-check`` under real mpiexec.

Its CPU dry run (device cpu, numpy for cupy) runs everywhere, so the program is never dead code
and its JSON report keeps its shape; the real CUDA checks run only where torch sees a GPU.
"""

import json

import pytest
import torch
from mpirun import assert_fails_fast, mpiexec, run_prog

CHECKS = ["select_device", "torch_sync_staged", "torch_sync_cuda_aware", "torch_cocod", "torch_gossip",
          "torch_dp", "cupy_sync_staged", "cupy_sync_cuda_aware", "cupy_cocod"]
ENTRY_KEYS = {"name", "status", "ok", "seconds", "error"}
VERSION_KEYS = {"python", "numpy", "mpi4py", "mpi_library", "mpi_standard", "mpi_cuda_support",
                "torch", "torch_cuda", "cupy", "cuda_runtime", "cuda_driver"}


def gpu_check(tmp_path, *args, ranks=2, timeout=300):
    path = tmp_path / "gpu-check.json"
    result = mpiexec(ranks, ["-m", "mpi4py", "-m", "mpisgd.gpucheck", "--json", path, *args], timeout=timeout)
    assert not result.timed_out, result.output[-4000:]
    return result, json.loads(path.read_text())


def assert_report_shape(report, mode, ranks):
    assert report["mode"] == mode and report["world_size"] == ranks and report["complete"] is True
    assert report["array_library"] == ("numpy" if mode == "cpu-dry-run" else "cupy")
    assert set(report["versions"]) == VERSION_KEYS and report["versions"]["mpi_library"]
    assert [entry["name"] for entry in report["checks"]] == CHECKS
    for entry in report["checks"]:
        assert set(entry) == ENTRY_KEYS, entry
        assert entry["status"] in ("passed", "failed", "skipped") and isinstance(entry["seconds"], float)
        assert entry["ok"] == {"passed": True, "failed": False, "skipped": None}[entry["status"]]
        assert (entry["error"] is None) == (entry["status"] == "passed"), entry
    statuses = [entry["status"] for entry in report["checks"]]
    counts = {status: statuses.count(status) for status in ("passed", "failed", "skipped")}
    assert {key: report[key] for key in counts} == counts


def test_cpu_dry_run_passes_every_check_that_needs_no_cuda(tmp_path):
    result, report = gpu_check(tmp_path, "--cpu-dry-run")
    assert result.returncode == 0, result.output[-4000:]
    assert_report_shape(report, "cpu-dry-run", 2)
    status = {entry["name"]: entry for entry in report["checks"]}
    assert status["select_device"]["status"] == "skipped" and status["select_device"]["error"] == "no CUDA"
    assert all(status[name]["status"] == "passed" for name in CHECKS[1:]), report["checks"]
    for name in CHECKS:  # one summary line per check
        assert f" {name} " in result.stdout, result.stdout


def test_checks_fail_when_communication_is_a_no_op(tmp_path):
    path = tmp_path / "mutated.json"
    result = run_prog(2, "gpu_mutated.py", "--cpu-dry-run", "--json", path, timeout=300)
    assert not result.timed_out and result.returncode != 0, result.output[-4000:]
    report = json.loads(path.read_text())
    assert_report_shape(report, "cpu-dry-run", 2)
    failed = [entry["name"] for entry in report["checks"] if entry["status"] == "failed"]
    assert failed == CHECKS[1:], report["checks"]
    assert all("max |difference|" in entry["error"] for entry in report["checks"][1:]), report["checks"]


def test_a_stuck_check_times_out_into_the_report(tmp_path):
    path = tmp_path / "stuck.json"
    result = run_prog(2, "gpu_stuck.py", "--cpu-dry-run", "--check-timeout", "3", "--json", path, timeout=120)
    assert_fails_fast(result, "stuck timed out after 3 s", within=30)
    report = json.loads(path.read_text())
    assert report["complete"] is False and report["failed"] == 1, report
    assert report["checks"] == [{"name": "stuck", "status": "failed", "ok": False, "seconds": 3.0,
                                 "error": "timed out after 3 s (a rank is stuck in MPI or CUDA: see stderr)"}]


def test_cuda_checks(tmp_path):
    """Every CUDA check where torch sees a GPU; elsewhere the program says why each one cannot run."""
    result, report = gpu_check(tmp_path)
    assert_report_shape(report, "cuda", 2)
    if not torch.cuda.is_available():
        assert result.returncode == 2 and report["skipped"] == len(CHECKS), result.output[-4000:]
        assert all("CUDA" in entry["error"] for entry in report["checks"]), report["checks"]
        pytest.skip(f"no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}, "
                    f"CUDA build {torch.version.cuda})")
    assert result.returncode == 0, result.output[-4000:]
    status = {entry["name"]: entry["status"] for entry in report["checks"]}
    assert report["device_name"] and status["select_device"] == "passed", report["checks"]
    assert all(status[name] == "passed" for name in ("torch_sync_staged", "torch_cocod", "torch_gossip",
                                                      "torch_dp"))
    assert report["failed"] == 0, report["checks"]  # cupy and CUDA-aware checks may be skipped, with reasons
