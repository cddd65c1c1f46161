"""Is the emulation right? An Allreduce of a known size against its bandwidth bound.

For each link (default ``1gbit,1ms`` and ``100mbit,5ms``) a cluster of
``hosts`` hosts runs :mod:`.probe`; the median time of the timed Allreduces
is compared with the bandwidth bound ``2 (p-1)/p * n * 8 / rate`` (what a
bandwidth-optimal all-reduce must put through every host's uplink), and the
``tun0`` byte counters must show at least that many bytes per host and
repetition crossing the emulated links, in total over the hosts (any
all-reduce moves at least ``2 (p-1) n`` bytes; with a host count that is
not a power of two MPICH's algorithm sends less than that from some hosts
and more from others). Goal: 1.0x to 1.5x the bound.
"""

import json
import os
import statistics
import subprocess
import sys

from ...errors import UsageError
from .cluster import Cluster
from .spec import ClusterSpec

GOAL = (1.0, 1.5)


def check_link(mpiexec: list, spec: ClusterSpec, nbytes: int, repeats: int, timeout: float) -> dict:
    hosts, network = spec.hosts, str(spec.network)
    with Cluster(spec) as cluster:
        before = cluster.interface_bytes()
        command = cluster.mpiexec(mpiexec, [sys.executable, "-m", "mpi4py", "-m", "mpisgd.bench.cluster.probe",
                                            str(nbytes), str(repeats)])
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env=cluster_environment())
        after = cluster.interface_bytes()
    if result.returncode:
        raise UsageError(f"the Allreduce probe failed (status {result.returncode}): {result.stderr.strip()[-500:]}")
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    median = statistics.median(probe["seconds"])
    per_host = 2 * (hosts - 1) / hosts * probe["bytes"]
    bound = per_host * 8 / spec.network.rate_bps
    sent = [a[1] - b[1] for a, b in zip(after, before)]
    ratio = median / bound if bound else None
    return {
        "network": network, "hosts": hosts, "bytes": probe["bytes"], "repeats": repeats,
        "allreduce_s": probe["seconds"], "median_s": median, "bandwidth_bound_s": bound,
        "over_bound": ratio, "within_goal": ratio is not None and GOAL[0] <= ratio <= GOAL[1],
        "result_correct": probe["correct"],
        "tun_bytes_sent_per_host": sent,
        "expected_bytes_per_host": per_host * (repeats + 1),
        "bytes_crossed_links": sum(sent) >= hosts * per_host * (repeats + 1),
        "emulator": cluster.report,
    }


def cluster_environment() -> dict:
    """The launcher's environment (hydra passes it to every rank): one thread per rank, unbuffered."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
