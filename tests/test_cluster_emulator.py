"""The link emulator's two packet loops (compiled linkemu.c and pure Python) on socket pairs, no root needed.

Each emulated host's "TUN device" is one end of a datagram socket pair; the
test writes IPv4 packets into the other end and reads what the emulator
delivers. Both loops must give the same model: nothing delivered before the
link model's time (uplink and downlink serialization, max of the two
delays), packets not for another emulated host dropped and counted, and the
same report fields. Also: finding and building the compiled loop, and the
fallback when there is no C compiler.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from mpisgd.bench.cluster import helper
from mpisgd.bench.cluster.emulator import Links, helper_command, report_of, serve
from mpisgd.bench.cluster.spec import ClusterSpec

SLOT = 7
REPORT_FIELDS = {"spec", "engine", "packets", "dropped", "bytes_sent", "bytes_received", "lateness_s",
                 "faithful", "faithful_means", "cpu_s"}


def packet(source: int, target: int, size: int, slot: int = SLOT) -> bytes:
    """An IPv4 header from host ``source`` to ``target`` (their data addresses), padded to ``size``."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0,
                         bytes([10, 201, slot, source + 1]), bytes([10, 201, slot, target + 1]))
    return header + bytes(size - len(header))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path, reason = helper.build(tmp_path_factory.mktemp("linkemu"))
    if path is None:
        pytest.skip(f"cannot build the compiled loop: {reason}")
    return path


class Hosts:
    """Socket pairs standing in for TUN devices: ``outer[h]`` is host h's side, ``inner`` the emulator's."""

    def __init__(self, count: int):
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(count)]
        self.outer = [a for a, _ in pairs]
        self.inner = [b for _, b in pairs]
        for sock in self.inner + self.outer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for sock in self.inner:
            sock.setblocking(False)
        self.fds = [sock.fileno() for sock in self.inner]

    def receive(self, host: int, timeout: float = 10.0):
        self.outer[host].settimeout(timeout)
        data = self.outer[host].recv(1 << 17)
        return time.monotonic(), data

    def close(self):
        for sock in self.inner + self.outer:
            sock.close()


def run_engine(engine, spec, hosts, tmp_path, exchange):
    """Run one loop over ``hosts`` while ``exchange()`` sends and receives; its report."""
    if engine == "python":
        stopping = []
        box = {}
        thread = threading.Thread(target=lambda: box.setdefault("links", serve(spec, hosts.fds, SLOT,
                                                                               lambda: bool(stopping))))
        thread.start()
        try:
            exchange()
        finally:
            stopping.append(True)
            thread.join(timeout=10)
        return box["links"].report(spec)
    out = tmp_path / "counts.json"
    child = subprocess.Popen(helper_command(engine, spec, SLOT, hosts.fds, str(out)), pass_fds=hosts.fds)
    try:
        time.sleep(0.2)  # started and polling (a packet sent earlier would only wait in the socket)
        exchange()
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 0
    return report_of(spec, json.loads(out.read_text()))


@pytest.fixture(params=["c", "python"])
def engine(request):
    return request.getfixturevalue("compiled") if request.param == "c" else "python"


def test_no_packet_beats_the_link_model(engine, tmp_path):
    """8 Mbit/s (1 us a byte) + 2 ms, host 2 a straggler at 4 Mbit/s + 10 ms; lower bounds only."""
    spec = ClusterSpec.parse(3, "8mbit,2ms", ["2:4mbit,10ms"])
    hosts = Hosts(3)
    seen = {}

    def exchange():
        start = time.monotonic()
        hosts.outer[0].send(packet(0, 1, 1000))
        hosts.outer[0].send(packet(0, 1, 1000))  # queues behind the first on host 0's uplink
        hosts.outer[1].send(packet(1, 2, 2000))  # to the straggler: its delay and its slower downlink
        hosts.outer[0].send(packet(0, 9, 500))  # no such host: dropped
        hosts.outer[1].send(b"\x60" + bytes(59))  # IPv6: dropped
        seen["to1"] = [hosts.receive(1), hosts.receive(1)]
        seen["to2"] = hosts.receive(2)
        seen["start"] = start

    try:
        report = run_engine(engine, spec, hosts, tmp_path, exchange)
    finally:
        hosts.close()
    (first, a), (second, b) = seen["to1"]
    assert a == packet(0, 1, 1000) and b == packet(0, 1, 1000)
    assert first - seen["start"] >= 0.001 + 0.002 + 0.001
    assert second - seen["start"] >= 0.002 + 0.002 + 0.001
    when, data = seen["to2"]
    assert data == packet(1, 2, 2000) and when - seen["start"] >= 0.002 + 0.010 + 0.004
    assert set(report) >= REPORT_FIELDS and report["engine"] in ("c", "python")
    assert report["packets"] == 3 and report["dropped"] == 2
    assert report["bytes_sent"] == [2000, 2000, 0] and report["bytes_received"] == [0, 2000, 2000]
    late = report["lateness_s"]
    assert 0 <= late["median"] <= late["p99"] <= late["max"]
    assert isinstance(report["faithful"], bool)


def test_an_empty_run_reports_no_lateness(engine, tmp_path):
    hosts = Hosts(2)
    try:
        report = run_engine(engine, ClusterSpec.parse(2, "1gbit,1ms"), hosts, tmp_path, lambda: None)
    finally:
        hosts.close()
    assert report["packets"] == 0 and report["lateness_s"] == {"median": None, "p99": None, "max": None}
    assert report["faithful"] and report["bytes_sent"] == [0, 0]


def test_helper_command_lists_every_host_in_order():
    spec = ClusterSpec.parse(3, "1gbit,1ms", ["1:100mbit,5ms"])
    assert helper_command("/x/linkemu", spec, 4, [10, 11, 12], "/tmp/out") == [
        "/x/linkemu", "/tmp/out", "4", "1000000000.0,0.001,10", "100000000.0,0.005,11", "1000000000.0,0.001,12"]


def test_python_report_matches_the_compiled_fields():
    links = Links(ClusterSpec.parse(2, "1gbit,1ms"))
    links.lateness = [0.0001 * i for i in range(1, 101)]
    report = links.report(ClusterSpec.parse(2, "1gbit,1ms"))
    assert report["engine"] == "python" and set(report) >= REPORT_FIELDS
    assert report["lateness_s"]["p99"] == pytest.approx(0.01) and report["faithful"] is False


def test_binary_name_follows_the_source(tmp_path):
    source = tmp_path / "linkemu.c"
    source.write_text("int main(void) { return 0; }\n")
    first = helper.binary_name(source)
    source.write_text("int main(void) { return 1; }\n")
    assert first.startswith("linkemu-") and helper.binary_name(source) != first
    assert helper.compile_command("cc", source, tmp_path / "x")[:2] == ["cc", "-O2"]


def test_without_a_compiler_the_python_loop_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang
    monkeypatch.delenv("CC", raising=False)
    assert helper.compiler() is None
    path, reason = helper.build(tmp_path)
    assert path is None and "no C compiler" in reason
    monkeypatch.setenv(helper.ENGINE_ENV, "python")
    assert helper.find() == (None, f"{helper.ENGINE_ENV}=python asks for the pure-Python loop")
    monkeypatch.setenv(helper.ENGINE_ENV, "fast")
    path, reason = helper.find()
    assert path is None and "not one of" in reason


def test_a_broken_source_is_reported_not_installed(tmp_path):
    if helper.compiler() is None:
        pytest.skip("no C compiler")
    source = tmp_path / "linkemu.c"
    source.write_text("this is not C\n")
    path, reason = helper.build(tmp_path / "out", source)
    assert path is None and "failed" in reason
    assert not any(name.startswith("linkemu-") for name in os.listdir(tmp_path / "out"))


def test_built_binary_runs(compiled):
    result = subprocess.run([str(compiled)], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr
