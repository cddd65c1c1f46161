"""The link emulator: one process that owns a TUN device in every host's namespace.

The kernel here has no ``netem`` (no delay qdisc), so links are emulated in
user space: the emulator creates ``tun0`` inside each emulated host's network
namespace (``setns`` then ``TUNSETIFF``), reads the IPv4 packets a host sends
to another host's data address, and writes each one into the destination's
TUN when the link model (:mod:`.spec`) says it arrives: serialized on the
sender's uplink, ``max(delay_i, delay_j)`` on the way, serialized on the
receiver's downlink. It runs at real-time priority (the cluster starts it
under ``chrt -f``): otherwise MPI ranks that busy-poll starve it.

Every delivery is compared with the time the model gave it; the report
(JSON, written when the emulator is stopped with SIGTERM) says how late
packets were, so a run can be checked as faithful, and how many bytes each
host sent and received through the emulated links.

The packet loop itself runs in C when it can (``linkemu.c``, built by the
install or on first use, :mod:`.helper`): this process opens the TUN
devices, starts the compiled loop with their file descriptors (it inherits
the real-time priority) and turns its counters into the report. Without a C
compiler, or with ``MPISGD_EMULATOR=python``, the same model runs in the
pure-Python loop below (:func:`serve`), which costs about a quarter more
processor time per packet (52-55 us against 41-44 us measured at 1 Gbit/s;
most of either is the kernel's copying and TCP processing).
The report's ``engine`` says which loop ran (``c`` or ``python``).

Run by :class:`~mpisgd.bench.cluster.Cluster`, as
``python -m mpisgd.bench.cluster.emulator SPEC_JSON SLOT NAMESPACES REPORT READY``.
"""

import ctypes
import errno
import fcntl
import heapq
import itertools
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

from . import helper
from .spec import TUN_MTU, TUN_NAME, ClusterSpec, data_address

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000
READ_BURST = 8  # packets read from one host before the due deliveries are made
FAITHFUL_P99_S = 1e-3  # a run is faithful when 99% of packets left at most 1 ms after their modelled time


def open_tun_in(namespace: str) -> int:
    """Create ``tun0`` in ``namespace`` and return its file descriptor (non-blocking)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(), IFF_TUN | IFF_NO_PI))
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(target)
    return fd


class Links:
    """The link model and its bookkeeping: when each packet is due, how late it was delivered."""

    def __init__(self, spec: ClusterSpec):
        links = [spec.link(h) for h in range(spec.hosts)]
        self.seconds_per_bit = [1.0 / link.rate_bps for link in links]
        self.delay = [link.delay_s for link in links]
        self.up_free = [0.0] * spec.hosts
        self.down_free = [0.0] * spec.hosts
        self.sent = [0] * spec.hosts
        self.received = [0] * spec.hosts
        self.lateness = []
        self.dropped = 0
        self.cpu_s = None  # the loop's processor time (user + system), set by serve()

    def uplink(self, now: float, source: int, target: int, size: int) -> float:
        """When a packet sent now reaches ``target``'s downlink."""
        self.up_free[source] = max(now, self.up_free[source]) + size * 8 * self.seconds_per_bit[source]
        self.sent[source] += size
        return self.up_free[source] + max(self.delay[source], self.delay[target])

    def downlink(self, arrival: float, target: int, size: int) -> float:
        """When a packet that reached ``target``'s downlink at ``arrival`` is delivered."""
        self.down_free[target] = max(arrival, self.down_free[target]) + size * 8 * self.seconds_per_bit[target]
        return self.down_free[target]

    def report(self, spec: ClusterSpec) -> dict:
        late = sorted(self.lateness)

        def quantile(q):
            return late[min(len(late) - 1, int(q * len(late)))] if late else None

        return report_of(spec, {"engine": "python", "packets": len(late), "dropped": self.dropped,
                                "bytes_sent": self.sent, "bytes_received": self.received,
                                "lateness_s": {"median": quantile(0.5), "p99": quantile(0.99),
                                               "max": late[-1] if late else None},
                                "cpu_s": self.cpu_s})


def report_of(spec: ClusterSpec, counts: dict) -> dict:
    """The emulator's report from either loop's counts (packets, dropped, bytes, lateness quantiles)."""
    p99 = counts["lateness_s"]["p99"]
    return {"spec": spec.as_dict(), **counts,
            "faithful": p99 is None or p99 <= FAITHFUL_P99_S,
            "faithful_means": f"99% of packets delivered at most {FAITHFUL_P99_S * 1e3:g} ms after "
                              "the time the link model gave them"}


def serve(spec: ClusterSpec, fds: list, slot: int, stop) -> Links:
    """Forward packets between the hosts' TUNs until ``stop()``; return the bookkeeping.

    The same loop as ``linkemu.c``: at most READ_BURST packets from one host, then the deliveries
    that are due, then the next host (a different one first each round)."""
    links = Links(spec)
    cpu_start = time.thread_time()
    host_of_fd = {fd: host for host, fd in enumerate(fds)}
    prefix = bytes([10, 201, slot])
    events, sequence = [], itertools.count()  # heap of (time, sequence, stage, target, packet)
    clock = time.monotonic

    def deliver_due():
        now = clock()
        while events and events[0][0] <= now:
            due, _, stage, target, packet = heapq.heappop(events)
            if stage == 0:  # reached the target's downlink: queue behind what is on it
                heapq.heappush(events, (links.downlink(due, target, len(packet)), next(sequence), 1, target, packet))
                continue
            try:
                os.write(fds[target], packet)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                links.dropped += 1
                continue
            links.received[target] += len(packet)
            links.lateness.append(clock() - due)
            now = clock()

    first = 0
    while not stop():
        timeout = max(0.0, events[0][0] - clock()) if events else 0.05
        readable, _, _ = select.select(fds, [], [], min(timeout, 0.05))
        readable.sort(key=lambda fd: (host_of_fd[fd] - first) % len(fds))
        first = (first + 1) % len(fds)
        for fd in readable:
            source = host_of_fd[fd]
            for _ in range(READ_BURST):
                try:
                    packet = os.read(fd, TUN_MTU + 100)
                except BlockingIOError:
                    break
                target = packet[19] - 1 if len(packet) >= 20 and packet[0] >> 4 == 4 else -1
                if packet[16:19] != prefix or not 0 <= target < spec.hosts or target == source:
                    links.dropped += 1  # not IPv4 to another emulated host (e.g. IPv6 chatter)
                    continue
                uplink = links.uplink(clock(), source, target, len(packet))
                heapq.heappush(events, (uplink, next(sequence), 0, target, packet))
            deliver_due()  # between hosts' bursts too: with many hosts a round of reads is long
        deliver_due()
    links.cpu_s = time.thread_time() - cpu_start
    return links


def helper_command(path, spec: ClusterSpec, slot: int, fds: list, out: str) -> list:
    """The compiled loop's command line: OUT SLOT, then RATE_BPS,DELAY_S,FD for every host in order."""
    links = [spec.link(h) for h in range(spec.hosts)]
    return [str(path), out, str(slot), *(f"{link.rate_bps!r},{link.delay_s!r},{fd}" for link, fd in zip(links, fds))]


def run_helper(path, spec: ClusterSpec, slot: int, fds: list, out: str, stopping: list) -> dict:
    """Run the compiled loop until SIGTERM (passed on to it); its report."""
    child = subprocess.Popen(helper_command(path, spec, slot, fds, out), pass_fds=fds, stdin=subprocess.DEVNULL)

    def stop(*_):
        stopping.append(True)
        child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if stopping:
        child.send_signal(signal.SIGTERM)
    status = child.wait()
    if status:
        raise RuntimeError(f"the compiled link emulator {path} exited with status {status}")
    with open(out) as counts:
        return report_of(spec, json.load(counts))


def main(argv) -> int:
    spec_json, slot, namespaces, report_path, ready_path = argv
    spec, slot, namespaces = ClusterSpec.from_json(spec_json), int(slot), namespaces.split(",")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    path, why_not = helper.find()
    if path is None and os.environ.get(helper.ENGINE_ENV) == "c":
        sys.stderr.write(f"link emulator: {helper.ENGINE_ENV}=c but the compiled loop is unavailable: {why_not}\n")
        return 1
    if path is None and os.environ.get(helper.ENGINE_ENV) != "python":
        sys.stderr.write(f"link emulator: the compiled loop is unavailable ({why_not}); "
                         "running the slower pure-Python loop\n")
    fds = [open_tun_in(name) for name in namespaces]
    for host, name in enumerate(namespaces):
        for command in (["addr", "add", f"{data_address(slot, host)}/24", "dev", TUN_NAME],
                        ["link", "set", TUN_NAME, "mtu", str(TUN_MTU), "up"]):
            subprocess.run(["ip", "-n", name, *command], check=True)
    with open(ready_path, "w") as ready:
        ready.write(str(os.getpid()))
    if path is not None:
        report = run_helper(path, spec, slot, fds, report_path + ".counts", stopping)
    else:
        report = serve(spec, fds, slot, lambda: bool(stopping)).report(spec)
        report["engine_note"] = why_not
    with open(report_path + ".part", "w") as out:
        json.dump(report, out)
    os.replace(report_path + ".part", report_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
