"""The emulated cluster (mpisgd.bench.cluster): link model, flags, and real runs where root allows.

The runs bring real network namespaces up, push an MPI Allreduce through
the user-space link emulator and check what must hold whatever the load:
the result is right, no Allreduce beats its bandwidth bound, the interface
counters show the bytes crossed the emulated links, and everything the
cluster created is gone afterwards (also after a failing rank and Ctrl-C).
How close to the bound it runs is a timing figure: `python -m
mpisgd.bench.cluster check` measures it (docs/emulated-cluster.md).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from mpirun import ROOT, run_command

from mpisgd.bench.cluster import ClusterSpec, Link, unavailable
from mpisgd.bench.cluster.emulator import Links
from mpisgd.bench.cluster.spec import parse_delay, parse_rate
from mpisgd.comm import UsageError

REASON = unavailable()
needs_cluster = pytest.mark.skipif(REASON is not None, reason=f"emulated cluster unavailable: {REASON}")
CLUSTER = [sys.executable, "-m", "mpisgd.bench.cluster"]


def test_rates_and_delays():
    assert parse_rate("1gbit") == 1e9 and parse_rate("100mbit") == 1e8 and parse_rate("500kbit") == 5e5
    assert parse_rate("2e6") == 2e6 and parse_delay("5ms") == 0.005 and parse_delay("250us") == 250e-6
    assert parse_delay("0") == 0 and parse_delay("0.5s") == 0.5
    for bad in ("fast", "1gbps", "-1mbit", "0mbit", ""):
        with pytest.raises(UsageError):
            parse_rate(bad)
    spec = ClusterSpec.parse(4, "1gbit,1ms", ["3:100mbit,5ms"])
    assert spec.link(0) == Link(1e9, 1e-3) and spec.link(3) == Link(1e8, 5e-3)
    assert ClusterSpec.from_json(spec.to_json()) == spec
    for hosts, network, stragglers in ((4, "1gbit", ()), (4, "1gbit,1ms", ["4:1mbit,1ms"]),
                                       (4, "1gbit,1ms", ["x:1mbit,1ms"]), (0, "1gbit,1ms", ()),
                                       (251, "1gbit,1ms", ())):
        with pytest.raises(UsageError):
            ClusterSpec.parse(hosts, network, stragglers)


def test_link_model():
    """Serialization on the sender's uplink (FIFO), max of the two delays, then the receiver's downlink."""
    links = Links(ClusterSpec.parse(3, "8mbit,1ms", ["2:4mbit,5ms"]))  # 1 us (2 us) per byte
    # two 1000-byte packets from 0 to 1 at t=0: the second waits for the first on the uplink
    assert links.uplink(0.0, 0, 1, 1000) == pytest.approx(0.001 + 0.001)
    assert links.uplink(0.0, 0, 1, 1000) == pytest.approx(0.002 + 0.001)
    assert links.downlink(0.002, 1, 1000) == pytest.approx(0.003)
    assert links.downlink(0.003, 1, 1000) == pytest.approx(0.004)
    # to the straggler: its 5 ms delay and its slower downlink
    assert links.uplink(1.0, 1, 2, 1000) == pytest.approx(1.001 + 0.005)
    assert links.downlink(1.006, 2, 1000) == pytest.approx(1.008)
    assert links.sent == [2000, 1000, 0]


def cluster_run(*args, timeout=180, started=None):
    return run_command([*CLUSTER, "run", *args], timeout=timeout, started=started)


def namespaces_of(result):
    """The namespaces of the slot the run announced, still present after it (should be none)."""
    match = re.search(r"hosts up in slot (\d+)", result.stderr)
    assert match, result.output[-3000:]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    return [name for name in listed if name.startswith(f"mps{match.group(1)}h")]


def test_bad_flags_exit_2():
    for args in (["--hosts", "2", "--network", "1gbit"], ["--hosts", "2", "--network", "1gbit,1ms",
                                                         "--straggler", "5:1mbit,1ms", "--", "true"],
                 ["--hosts", "2", "--network", "1gbit,1ms"]):
        result = cluster_run(*args, timeout=60)
        assert result.returncode == 2 and "error:" in result.stderr, result.output[-2000:]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_without_root_a_clear_refusal():
    result = run_command(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *CLUSTER, "run",
                          "--hosts", "2", "--network", "1gbit,1ms", "--", "true"], timeout=60)
    assert result.returncode == 2 and "needs root" in result.stderr, result.output[-2000:]


@needs_cluster
def test_allreduce_crosses_the_emulated_links(tmp_path):
    """2 hosts at 100 Mbit/s + 2 ms: right result, never faster than the bound, bytes on tun0, clean."""
    nbytes, repeats = 2 << 20, 2
    report = tmp_path / "emulator.json"
    result = cluster_run("--hosts", "2", "--network", "100mbit,2ms", "--report", report, "--",
                         sys.executable, "-m", "mpi4py", "-m", "mpisgd.bench.cluster.probe", nbytes, repeats)
    assert result.returncode == 0, result.output[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["ranks"] == 2 and probe["correct"]
    bound = nbytes * 8 / 1e8  # 2 (p-1)/p n bytes through each uplink at 100 Mbit/s
    assert all(seconds >= bound for seconds in probe["seconds"]), (probe["seconds"], bound)
    emulation = json.loads(report.read_text())
    assert emulation["packets"] > 0 and isinstance(emulation["faithful"], bool)
    assert all(sent >= nbytes * (repeats + 1) for sent in emulation["bytes_sent"]), emulation["bytes_sent"]
    assert "faithful" in result.stderr
    assert namespaces_of(result) == []


@needs_cluster
def test_a_failing_rank_ends_the_job_and_the_cluster():
    job = "import sys; from mpi4py import MPI; sys.exit(3) if MPI.COMM_WORLD.rank == 1 else MPI.COMM_WORLD.Barrier()"
    result = cluster_run("--hosts", "2", "--network", "1gbit,1ms", "--", sys.executable, "-m", "mpi4py",
                         "-c", job, timeout=120)
    assert not result.timed_out and result.returncode != 0, result.output[-3000:]
    assert namespaces_of(result) == []


def signal_when_started(marker, signum, group=True):
    """A ``started`` callback: once the job has touched ``marker``, send ``signum`` to the run."""
    def callback(process):
        def wait_then_signal():
            deadline = time.time() + 60
            while not marker.exists() and time.time() < deadline:
                time.sleep(0.1)
            if group:
                os.killpg(process.pid, signum)  # Ctrl-C signals the whole foreground group
            else:
                os.kill(process.pid, signum)
        threading.Thread(target=wait_then_signal, daemon=True).start()
    return callback


@needs_cluster
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_tears_the_cluster_down(tmp_path, signum, status):
    marker = tmp_path / "started"
    result = cluster_run("--hosts", "2", "--network", "1gbit,1ms", "--", "sh", "-c", f"touch {marker}; sleep 60",
                         timeout=120, started=signal_when_started(marker, signum, group=signum == signal.SIGINT))
    assert not result.timed_out and result.returncode == status, result.output[-3000:]
    assert namespaces_of(result) == []


@needs_cluster
def test_down_removes_what_a_killed_cluster_left(tmp_path):
    """SIGKILL leaves namespaces, the emulator and the job behind; `down` removes them all."""
    marker = tmp_path / "started"
    result = cluster_run("--hosts", "2", "--network", "1gbit,1ms", "--", "sh", "-c", f"touch {marker}; sleep 60",
                         timeout=120, started=signal_when_started(marker, signal.SIGKILL, group=False))
    assert result.returncode == -signal.SIGKILL
    assert len(namespaces_of(result)) == 2
    down = run_command([*CLUSTER, "down"], timeout=60)
    assert down.returncode == 0 and "removed" in down.stdout, down.output
    assert namespaces_of(result) == []
    slot = re.search(r"hosts up in slot (\d+)", result.stderr).group(1)
    emulators = subprocess.run(["pgrep", "-f", f"mpisgd.bench.cluster.emulator .* mps{slot}h0"],
                               capture_output=True, text=True).stdout.split()
    assert emulators == []


@needs_cluster
def test_benchmark_runs_on_the_emulated_cluster(tmp_path):
    """stragglers --quick, 2 ranks, host 1 on a slower link: the report records the cluster and its emulation."""
    path = tmp_path / "stragglers.json"
    result = run_command([sys.executable, "-m", "mpisgd.bench", "stragglers", "--quick", "--ranks", "2",
                          "--repeats", "1", "--network", "1gbit,1ms", "--straggler", "1:100mbit,5ms",
                          "--json", path], timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.output[-3000:]
    report = json.loads(path.read_text())
    assert report["config"]["emulated_cluster"]["hosts"] == 2
    assert report["config"]["emulated_cluster"]["stragglers"] == {"1": {"rate_bps": 1e8, "delay_s": 0.005}}
    assert report["config"]["slow_ranks"] == "1" and report["config"]["slow_factor"] == 1.0
    assert report["emulation"]["packets"] > 0 and min(report["emulation"]["bytes_sent"]) > 0
