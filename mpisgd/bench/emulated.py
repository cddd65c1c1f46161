"""Benchmarks on the emulated cluster: ``--network RATE,DELAY`` and ``--straggler HOST:RATE,DELAY``.

The training benchmarks (``overlap``, ``stragglers``, ``gossip``, ``scaling``) take these flags,
through :func:`.training.add_training_arguments`. Typed in a plain
shell (as root), the benchmark then brings up one emulated host per rank
(:mod:`.cluster`), re-launches itself across them instead of under a plain
``mpiexec``, tears the cluster down, and adds the link emulator's report
(``emulation``: the links, how late packets were, whether the run was
faithful, bytes per host) to the JSON written with ``--json``. Inside the
job the report's ``config`` records the cluster (``emulated_cluster``).
"""

import json
import os
import sys

from ..errors import UsageError
from .cluster import SPEC_ENV, Cluster, ClusterSpec

ARGUMENTS_HELP = "emulated cluster (one network namespace per rank, root only; docs/emulated-cluster.md)"


def add_arguments(parser) -> None:
    group = parser.add_argument_group(ARGUMENTS_HELP)
    group.add_argument("--network", metavar="RATE,DELAY",
                       help="run across emulated hosts whose links have this rate and one-way delay, "
                            "e.g. 1gbit,1ms or 100mbit,5ms")
    group.add_argument("--straggler", metavar="HOST:RATE,DELAY", action="append",
                       help="host HOST (its rank) gets this slower link instead, e.g. 3:100mbit,5ms "
                            "(repeatable; needs --network)")


def wanted(args) -> bool:
    return bool(getattr(args, "network", None) or getattr(args, "straggler", None))


def spec_of(args, ranks: int) -> ClusterSpec:
    """The cluster the flags describe (UsageError on bad values), for ``ranks`` hosts."""
    if not args.network:
        raise UsageError("--straggler needs --network (the links of the other hosts)")
    return ClusterSpec.parse(ranks, args.network, args.straggler)


def spec_in_job():
    """The emulated cluster this job runs on (its spec as a dict), or None on a real network."""
    text = os.environ.get(SPEC_ENV)
    return ClusterSpec.from_json(text).as_dict() if text else None


def check_inside(args) -> None:
    """Under a launcher, the flags only make sense when this job runs on the cluster they ask for."""
    if wanted(args) and SPEC_ENV not in os.environ:
        raise UsageError("--network/--straggler start their own emulated cluster: type the benchmark in a "
                         "plain shell as root (not under mpiexec or srun)")


def relaunch_on_cluster(args, ranks: int, relaunch) -> int:
    """Run ``relaunch(wrap)`` with ``wrap`` placing the job across a fresh emulated cluster."""
    spec = spec_of(args, ranks)
    with Cluster(spec) as cluster:
        status = relaunch(lambda launcher, job: cluster.mpiexec(launcher, job))
    report = cluster.report
    if report is not None:
        late = report["lateness_s"]["p99"]
        sys.stderr.write(f"mpisgd.bench: emulated cluster ({ranks} hosts, {spec.network}"
                         f"{', stragglers ' + ', '.join(f'{h}: {l}' for h, l in spec.overrides.items()) if spec.overrides else ''})"
                         f" was {'faithful' if report['faithful'] else 'NOT faithful'}: 99% of "
                         f"{report['packets']} packets within {0 if late is None else late * 1e3:.2f} ms "
                         "of the link model\n")
    if args.json and status == 0 and os.path.exists(args.json):
        with open(args.json) as source:
            document = json.load(source)
        document["emulation"] = report
        with open(args.json + ".part", "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(args.json + ".part", args.json)
    return status
