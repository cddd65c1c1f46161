"""The JSON report every benchmark writes: machine, command, config, results, ratios."""

import datetime
import json
import os
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path

from mpi4py import MPI

from .launch import LAUNCHER_ENV, typed_command


def _version(package: str):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _load_average():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(comm, threads: int) -> dict:
    """Where the figures come from: host(s), cores, load, MPI library, package versions, ranks.

    Collective (gathers the host names): call on every rank.
    """
    hosts = comm.allgather(socket.gethostname())
    return {
        "hostname": hosts[0],
        "nodes": len(set(hosts)),
        "cpu_count": os.cpu_count(),
        "ranks": comm.Get_size(),
        "threads_per_rank": threads,
        "load_average_start": _load_average(),  # 1, 5, 15 min: other jobs on the machine skew timings
        "mpi_library": MPI.Get_library_version().strip().splitlines()[0],
        "mpi_standard": "%d.%d" % MPI.Get_version(),
        "mpi4py": _version("mpi4py"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def make_report(name: str, *, argv, machine: dict, config: dict, results, ratios: dict, goals: dict) -> dict:
    """Assemble the JSON object; ``machine`` comes from :func:`machine_info` taken before the run."""
    return {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": typed_command(argv),
        "launched_as": os.environ.get(LAUNCHER_ENV) or "external launcher: " + " ".join([sys.executable, *sys.argv]),
        "machine": {**machine, "load_average_end": _load_average()},
        "config": config,
        "results": results,
        "ratios": ratios,
        "goals": goals,
        "below_goal": sorted(
            f"{key}[{label}]" for key, goal in goals.items() for label, value in ratios.get(key, {}).items()
            if value < goal
        ),
    }


def emit(report: dict, path=None) -> None:
    """Print the report to stdout and write it to ``path`` (rank 0 only)."""
    text = json.dumps(report, indent=2)
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)


def progress(comm, message: str) -> None:
    """One progress line on rank 0's stderr (stdout carries only the JSON)."""
    if comm.Get_rank() == 0:
        sys.stderr.write(f"[mpisgd.bench] {message}\n")
        sys.stderr.flush()
