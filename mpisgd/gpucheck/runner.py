"""Command line, time limits and JSON report of the GPU readiness check (overview: :mod:`mpisgd.gpucheck`).

The report (written by rank 0, rewritten before and after every check)::

    {"mode": "cuda" | "cpu-dry-run", "world_size": 2, "array_library": "cupy" | "numpy",
     "device_name": "NVIDIA H200" | null,
     "versions": {"torch": ..., "torch_cuda": ..., "cupy": ..., "cuda_runtime": ..., "mpi4py": ...,
                  "mpi_library": ..., "mpi_cuda_support": true | false | null, ...},
     "checks": [{"name": ..., "status": "passed" | "failed" | "skipped" | "running",
                 "ok": true | false | null, "seconds": ..., "error": null | "why"}, ...],
     "passed": n, "failed": n, "skipped": n, "seconds": ..., "complete": true}
"""

import argparse
import json
import platform
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from .checks import CHECKS, Context, Skip


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mpisgd.gpucheck",
                                     description="Run every CUDA path of mpisgd and check its numbers.")
    parser.add_argument("--json", default="runs/gpu-check.json", help="report path (written by rank 0)")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="same checks on device cpu with numpy for cupy; CUDA-only checks are skipped")
    parser.add_argument("--cuda-aware", choices=("auto", "force"), default="auto",
                        help="auto: CUDA-aware checks only if the MPI library reports CUDA support")
    parser.add_argument("--check-timeout", type=float, default=90.0, help="seconds one check may take")
    parser.add_argument("--time-limit", type=float, default=270.0, help="seconds all checks may take")
    return parser.parse_args(argv)


def environment(ctx) -> dict:
    """Mode, world size, device name and the versions of everything on the device path."""
    import mpi4py

    from ..comm.mpi import MPI

    torch, cupy = ctx.torch, ctx.cupy
    versions = {"python": platform.python_version(), "numpy": np.__version__, "mpi4py": mpi4py.__version__,
                "mpi_library": MPI.Get_library_version().splitlines()[0].strip(),
                "mpi_standard": "{}.{}".format(*MPI.Get_version()), "mpi_cuda_support": ctx.mpi_cuda,
                "torch": getattr(torch, "__version__", None),
                "torch_cuda": getattr(getattr(torch, "version", None), "cuda", None),
                "cupy": getattr(cupy, "__version__", None), "cuda_runtime": None, "cuda_driver": None}
    name = torch.cuda.get_device_name(0) if ctx.cuda else None
    if cupy is not None:
        versions["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        versions["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
        name = name or cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return {"mode": "cpu-dry-run" if ctx.dry_run else "cuda", "world_size": ctx.world.size,
            "array_library": "numpy" if ctx.dry_run else "cupy", "device_name": name, "versions": versions}


class Report:
    """The JSON report; only rank 0 writes it (atomically, so a reader never sees half a file)."""

    def __init__(self, path, header: dict, writer: bool):
        self.path, self.writer, self.started = Path(path), writer, time.perf_counter()
        self.data = {**header, "checks": [], "passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0,
                     "complete": False}

    def add(self, entry: dict) -> None:
        self.data["checks"].append(entry)
        self.data[entry["status"]] += 1
        if self.writer:
            error = f"  {entry['error']}" if entry["error"] else ""
            print(f"gpu-check {entry['status'].upper():7s} {entry['name']:22s} {entry['seconds']:6.1f} s{error}",
                  flush=True)

    def write(self, running: str = None, complete: bool = False) -> None:
        if not self.writer:
            return
        data = {**self.data, "seconds": round(time.perf_counter() - self.started, 3), "complete": complete}
        if running:
            data["checks"] = [*data["checks"], {"name": running, "status": "running", "ok": None,
                                                "seconds": None, "error": None}]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        partial.replace(self.path)


def _entry(name: str, outcomes: list, seconds: float) -> dict:
    """One report entry from every rank's (status, error): a check passes only where it passed everywhere."""
    statuses = {status for status, _ in outcomes}
    if statuses == {"passed"}:
        status, error = "passed", None
    elif statuses == {"skipped"}:
        status, error = "skipped", outcomes[0][1]
    else:
        status, by_error = "failed", {}
        for rank, (state, text) in enumerate(outcomes):
            if state != "passed":
                by_error.setdefault(text if state == "failed" else f"skipped here: {text}", []).append(str(rank))
        error = "; ".join(f"rank {','.join(ranks)}: {text}" for text, ranks in by_error.items())
    return {"name": name, "status": status, "ok": None if status == "skipped" else status == "passed",
            "seconds": round(seconds, 3), "error": error}


def _time_out(ctx, report: Report, name: str, limit: float) -> None:
    """Watchdog: record the check as failed (rank 0), then end the whole job."""
    if ctx.world.rank == 0:
        report.add({"name": name, "status": "failed", "ok": False, "seconds": round(limit, 3),
                    "error": f"timed out after {limit:.0f} s (a rank is stuck in MPI or CUDA: see stderr)"})
        report.write()
    sys.stderr.write(f"[rank {ctx.world.rank}] gpu-check: {name} timed out after {limit:.0f} s, aborting\n")
    sys.stderr.flush()
    ctx.world.Abort(1)


def run_check(ctx, check, report: Report, deadline: float) -> None:
    """Run one check on every rank under its time limit and add its entry to the report."""
    name = check.__name__[len("check_"):]
    report.write(running=name)
    limit = max(0.0, min(ctx.args.check_timeout, deadline - time.monotonic()))
    grace = 0.0 if ctx.world.rank == 0 else 10.0  # rank 0 writes the report before anyone aborts
    watchdog = threading.Timer(limit + grace, _time_out, (ctx, report, name, limit))
    watchdog.daemon = True
    watchdog.start()
    started = time.perf_counter()
    try:
        check(ctx)
        outcome = ("passed", None)
    except Skip as reason:
        outcome = ("skipped", str(reason))
    except Exception as error:  # reported, and the next check still runs
        outcome = ("failed", f"{type(error).__name__}: {error}")
        sys.stderr.write("".join(f"[rank {ctx.world.rank}] {line}\n"
                                 for line in traceback.format_exc().splitlines()))
    outcomes = ctx.world.allgather(outcome)
    watchdog.cancel()
    report.add(_entry(name, outcomes, time.perf_counter() - started))
    report.write()


def main(argv=None) -> int:
    """Run every check; exit status 0 (passed or skipped), 1 (a check failed), 2 (nothing could run)."""
    args = parse(argv)
    ctx = Context(args)
    report = Report(args.json, environment(ctx), writer=ctx.world.rank == 0)
    if ctx.world.rank == 0:
        info = report.data
        print(f"gpu-check: {info['mode']}, {info['world_size']} ranks, device {info['device_name']}, "
              f"{json.dumps(info['versions'])}", flush=True)
    deadline = time.monotonic() + args.time_limit
    for check in CHECKS:
        run_check(ctx, check, report, deadline)
    report.write(complete=True)
    counts = report.data
    if ctx.world.rank == 0:
        print(f"gpu-check: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
              f"in {time.perf_counter() - report.started:.1f} s; report {args.json}", flush=True)
        if not counts["passed"]:
            print("gpu-check: nothing could run here (the reasons are above); exit status 2", flush=True)
    if counts["failed"]:
        return 1
    return 2 if counts["passed"] == 0 else 0
