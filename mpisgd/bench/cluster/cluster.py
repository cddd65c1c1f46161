"""Bring an emulated cluster up, run an MPI job across it, tear it down whatever happens.

``Cluster(spec)`` used as a context manager creates, for slot ``s`` (a free
number 0-15, so that two clusters never collide):

- a control bridge ``mps{s}br`` at ``10.200.{s}.254/24`` in the machine's
  own namespace (unshaped; hydra's control traffic uses it);
- one network namespace per host, ``mps{s}h{i}``, with ``eth0`` at
  ``10.200.{s}.{i+1}`` on that bridge and ``tun0`` at ``10.201.{s}.{i+1}``,
  the data link owned by the link emulator (:mod:`.emulator`), started at
  real-time priority;
- a launcher script that hydra (MPICH's mpiexec) calls like ssh
  (``launcher [-x] HOST COMMAND...``) and that runs COMMAND inside HOST's
  namespace.

:meth:`Cluster.mpiexec` gives the command line that starts one rank per host
with MPI forced onto TCP over ``tun0`` and shared memory forbidden (all
namespaces share one hostname, so MPICH would otherwise treat them as one
host). Only the addresses above, inside namespaces the cluster created, are
ever used. :meth:`Cluster.down` (run on exit, on an exception and on
Ctrl-C) stops the emulator, reads its faithfulness report and deletes
everything it created. Needs root: :func:`unavailable` says why not.
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ...errors import UsageError
from .spec import TUN_NAME, ClusterSpec, data_address

LOCK_DIR = Path("/run/mpisgd-cluster")
SLOTS = 16
REALTIME_PRIORITY = 50
SPEC_ENV = "MPISGD_CLUSTER"  # the cluster's spec (JSON), seen by the ranks
_LAUNCHER = """#!/bin/sh
# hydra calls this like ssh: [-x] HOST COMMAND...; run COMMAND in HOST's network namespace.
while [ "${1#-}" != "$1" ]; do shift; done
host="$1"; shift
exec ip netns exec "$host" sh -c "$*"
"""


def unavailable():
    """Why an emulated cluster cannot run here (a short reason), or None when it can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices, real-time priority)"
    for tool in ("ip", "chrt"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    probe = f"mpsprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if subprocess.run(["chrt", "-f", str(REALTIME_PRIORITY), "true"], capture_output=True).returncode:
        return "cannot run at real-time priority (chrt -f)"
    return None


def _ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode:
        raise UsageError(f"emulated cluster: 'ip {' '.join(args)}' failed: {result.stderr.strip()}")
    return result


class Cluster:
    def __init__(self, spec: ClusterSpec, *, ready_timeout: float = 30.0):
        self.spec = spec
        self.ready_timeout = ready_timeout
        self.slot = None
        self.report = None
        self._lock = self._emulator = self._workdir = None
        self._created = []  # ("netns", name) / ("link", name), deleted in reverse order

    # names -----------------------------------------------------------------
    def namespace(self, host: int) -> str:
        return f"mps{self.slot}h{host}"

    @property
    def namespaces(self) -> list:
        return [self.namespace(h) for h in range(self.spec.hosts)]

    @property
    def control_address(self) -> str:
        return f"10.200.{self.slot}.254"

    def data_address(self, host: int) -> str:
        return data_address(self.slot, host)

    # life cycle --------------------------------------------------------------
    def __enter__(self):
        self._terminate_as_exit()
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def _terminate_as_exit(self) -> None:
        """SIGTERM raises SystemExit while the cluster is up, so that it is torn down (main thread only)."""
        self._saved_sigterm = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._saved_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def up(self) -> None:
        reason = unavailable()
        if reason:
            raise UsageError(f"emulated cluster unavailable: {reason}")
        self._take_slot()
        self._workdir = Path(tempfile.mkdtemp(prefix=f"mpisgd-cluster{self.slot}-"))
        bridge = f"mps{self.slot}br"
        clear_slot(self.slot)  # leftovers of a run that was killed with SIGKILL
        _ip("link", "add", bridge, "type", "bridge")
        self._created.append(("link", bridge))
        _ip("addr", "add", f"{self.control_address}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for host, name in enumerate(self.namespaces):
            _ip("netns", "add", name)
            self._created.append(("netns", name))
            veth = f"mps{self.slot}v{host}"
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            self._created.append(("link", veth))
            _ip("link", "set", veth, "master", bridge, "up")
            _ip("-n", name, "addr", "add", f"10.200.{self.slot}.{host + 1}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
        self._start_emulator()
        launcher = self._workdir / "launcher.sh"
        launcher.write_text(_LAUNCHER)
        launcher.chmod(0o755)

    def _take_slot(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        for slot in range(SLOTS):
            handle = open(LOCK_DIR / f"slot{slot}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.slot, self._lock = slot, handle
            return
        raise UsageError(f"emulated cluster: all {SLOTS} slots are in use (see {LOCK_DIR})")

    def _start_emulator(self) -> None:
        ready = self._workdir / "ready"
        self._report_path = self._workdir / "emulator.json"
        command = ["chrt", "-f", str(REALTIME_PRIORITY), sys.executable, "-m", "mpisgd.bench.cluster.emulator",
                   self.spec.to_json(), str(self.slot), ",".join(self.namespaces), str(self._report_path),
                   str(ready)]
        self._emulator = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while not ready.exists():
            if self._emulator.poll() is not None:
                raise UsageError(f"emulated cluster: the link emulator exited with status "
                                 f"{self._emulator.returncode} while starting")
            if time.monotonic() > deadline:
                raise UsageError(f"emulated cluster: the link emulator was not ready after {self.ready_timeout:g} s")
            time.sleep(0.02)

    def down(self) -> None:
        """Stop the emulator (keeping its report) and delete everything this cluster created."""
        with _signals_deferred():
            if self._emulator is not None:
                if self._emulator.poll() is None:
                    self._emulator.send_signal(signal.SIGTERM)
                    try:
                        self._emulator.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self._emulator.kill()
                        self._emulator.wait()
                self._emulator = None
                if self._report_path.exists():
                    self.report = json.loads(self._report_path.read_text())
            for kind, name in reversed(self._created):
                if kind == "netns":
                    _ip("netns", "del", name, check=False)
                else:
                    _ip("link", "del", name, check=False)
            self._created.clear()
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None
            if self._lock is not None:
                self._lock.close()
                self._lock = None
        if getattr(self, "_saved_sigterm", None) is not None:
            signal.signal(signal.SIGTERM, self._saved_sigterm)
            self._saved_sigterm = None

    # running ---------------------------------------------------------------
    def environment(self) -> dict:
        """Variables every rank gets: the spec, and MPI on TCP over tun0 without shared memory."""
        return {SPEC_ENV: self.spec.to_json(), "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
                "FI_TCP_IFACE": TUN_NAME, "MPIR_CVAR_NOLOCAL": "1"}

    def mpiexec(self, mpiexec: list, command: list) -> list:
        """``mpiexec`` (MPICH hydra) starting ``command`` once on every host."""
        hosts = self.spec.hosts
        line = [*mpiexec, "-launcher", "ssh", "-launcher-exec", str(self._workdir / "launcher.sh"),
                "-localhost", self.control_address, "-hosts", ",".join(self.namespaces),
                "-n", str(hosts), "-ppn", "1"]
        for name, value in self.environment().items():
            line += ["-genv", name, value]
        return [*line, *command]

    def interface_bytes(self) -> list:
        """(received, sent) bytes of every host's tun0, from the kernel's interface counters."""
        counters = []
        for name in self.namespaces:
            text = _ip("-n", name, "-s", "-j", "link", "show", TUN_NAME).stdout
            stats = json.loads(text)[0]["stats64"]
            counters.append((stats["rx"]["bytes"], stats["tx"]["bytes"]))
        return counters


def clear_slot(slot: int) -> int:
    """Remove what a killed cluster left in ``slot``: its processes, namespaces and links; how many went."""
    gone = 0
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    ours = [name for name in names if name.startswith(f"mps{slot}h")]
    for name in ours:  # processes still running inside (ranks, hydra proxies)
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
        _kill(int(pid) for pid in pids)
    _kill(_leftovers_of(slot))
    for name in ours:
        gone += _ip("netns", "del", name, check=False).returncode == 0
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name == f"mps{slot}br" or name.startswith(f"mps{slot}v"):
            gone += _ip("link", "del", name, check=False).returncode == 0
    return gone


def _leftovers_of(slot: int):
    """Process ids of the link emulator and the launcher of a cluster in ``slot`` (from /proc/*/cmdline)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = b" ".join(argv)
        first_host = f"mps{slot}h0".encode()
        emulator = b"mpisgd.bench.cluster.emulator" in argv and any(a.split(b",")[0] == first_host for a in argv)
        launcher = f"/mpisgd-cluster{slot}-".encode() in line and b"launcher.sh" in line
        if emulator or launcher:
            yield int(entry.name)


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class _signals_deferred:
    """Hold SIGINT/SIGTERM off while tearing down, so a second Ctrl-C cannot leave debris."""

    def __enter__(self):
        self._saved = {}
        self._pending = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._saved[sig] = signal.signal(sig, lambda s, _f: self._pending.append(s))
            except ValueError:  # not the main thread
                pass

    def __exit__(self, *exc):
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False
