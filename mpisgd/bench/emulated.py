"""Benchmarks on the emulated cluster: ``--network RATE,DELAY``, ``--straggler HOST:RATE,DELAY`` and
``--stragglers SHARE:RATE,DELAY``.

``--stragglers`` gives a share of the hosts the slower link: a fraction in
(0, 1) of the hosts, rounded to the nearest whole number (``0.12`` of 16
hosts is 2, of 60 it is 7, the DivShare artifact's 7 of 60), or a count (a
whole number, ``2``). The stragglers are the last hosts (ranks ``N-k`` to
``N-1``), so rank 0, whose model the benchmarks evaluate, is a fast one.

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
from .cluster.spec import Link

ARGUMENTS_HELP = "emulated cluster (one network namespace per rank, root only; docs/emulated-cluster.md)"


def add_arguments(parser) -> None:
    group = parser.add_argument_group(ARGUMENTS_HELP)
    group.add_argument("--network", metavar="RATE,DELAY",
                       help="run across emulated hosts whose links have this rate and one-way delay, "
                            "e.g. 1gbit,1ms or 100mbit,5ms")
    group.add_argument("--straggler", metavar="HOST:RATE,DELAY", action="append",
                       help="host HOST (its rank) gets this slower link instead, e.g. 3:100mbit,5ms "
                            "(repeatable; needs --network)")
    group.add_argument("--stragglers", metavar="SHARE:RATE,DELAY",
                       help="the last hosts get this slower link: SHARE a fraction in (0, 1) of the hosts, rounded "
                            "(0.12:20mbit,5ms: 2 of 16), or a count (2:20mbit,5ms); needs --network")


def wanted(args) -> bool:
    return any(getattr(args, name, None) for name in ("network", "straggler", "stragglers"))


def share_of(text: str, hosts: int) -> int:
    """How many hosts ``--stragglers``' SHARE names: a fraction in (0, 1) of ``hosts``, rounded, or a count."""
    try:
        count = int(text) if text.strip().isdigit() else None
        fraction = None if count is not None else float(text)
    except ValueError:
        raise UsageError(f"bad --stragglers share {text!r}: a fraction in (0, 1) or a count of hosts") from None
    if fraction is not None:
        if not 0 < fraction < 1:
            raise UsageError(f"--stragglers: the fraction of hosts must be in (0, 1), got {text}")
        count = round(fraction * hosts)
        if count == 0:
            raise UsageError(f"--stragglers: {text} of {hosts} hosts rounds to no straggler")
    if count < 1 or count > hosts:
        raise UsageError(f"--stragglers: {count} stragglers but {hosts} hosts (give 1 to {hosts})")
    return count


def straggler_links(args, ranks: int) -> list:
    """``--straggler`` and ``--stragglers`` as ``HOST:RATE,DELAY`` texts; a host named twice is an error."""
    given = list(args.straggler or ())
    if getattr(args, "stragglers", None):
        share, sep, link = args.stragglers.partition(":")
        if not sep:
            raise UsageError(f"bad --stragglers {args.stragglers!r}: expected SHARE:RATE,DELAY, e.g. 0.12:20mbit,5ms")
        Link.parse(link)  # a bad link is named first, whatever the share
        count = share_of(share, ranks)
        named = {text.partition(":")[0].strip() for text in given}
        twice = [str(h) for h in range(ranks - count, ranks) if str(h) in named]
        if twice:
            raise UsageError(f"host(s) {', '.join(twice)} given by both --straggler and --stragglers")
        given += [f"{host}:{link}" for host in range(ranks - count, ranks)]
    return given


def spec_of(args, ranks: int) -> ClusterSpec:
    """The cluster the flags describe (UsageError on bad values), for ``ranks`` hosts."""
    if not args.network:
        raise UsageError("--straggler and --stragglers need --network (the links of the other hosts)")
    return ClusterSpec.parse(ranks, args.network, straggler_links(args, ranks))


def straggler_ranks(args, ranks: int):
    """The emulated straggler hosts as a rank list text (``"14,15"``), or None without any."""
    if not wanted(args):
        return None
    return ",".join(str(h) for h in sorted(spec_of(args, ranks).overrides)) or None


def spec_in_job():
    """The emulated cluster this job runs on (its spec as a dict), or None on a real network."""
    text = os.environ.get(SPEC_ENV)
    return ClusterSpec.from_json(text).as_dict() if text else None


def check_inside(args) -> None:
    """Under a launcher, the flags only make sense when this job runs on the cluster they ask for."""
    if wanted(args) and SPEC_ENV not in os.environ:
        raise UsageError("--network/--straggler(s) start their own emulated cluster: type the benchmark in a "
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
