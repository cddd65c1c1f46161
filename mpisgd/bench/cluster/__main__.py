"""``python -m mpisgd.bench.cluster run|check|down``: the emulated cluster from a shell (as root).

``run --hosts N --network RATE,DELAY [--straggler HOST:RATE,DELAY]... -- COMMAND...``
    brings N emulated hosts up, runs COMMAND once on each (one MPI rank per
    host, e.g. ``-- python -m mpi4py -m mpisgd train --algorithm cocod``),
    tears everything down, and prints the emulator's report (how late
    packets were; ``--report PATH`` also writes it). Exit status: COMMAND's.
``check``
    the Allreduce of a known size against its bandwidth bound, at
    ``1gbit,1ms`` and ``100mbit,5ms`` by default (:mod:`.check`); JSON out.
``down``
    deletes namespaces and links left by a cluster that was killed with
    SIGKILL (clusters clean up after themselves otherwise).
"""

import argparse
import fcntl
import json
import shlex
import subprocess
import sys

from ...errors import UsageError
from ..launch import find_mpiexec, kill_group
from .check import check_link, cluster_environment
from .cluster import LOCK_DIR, SLOTS, Cluster, clear_slot
from .spec import ClusterSpec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpisgd.bench.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a command with one rank on each emulated host")
    run.add_argument("--hosts", type=int, required=True, help="emulated hosts (= MPI ranks)")
    run.add_argument("--network", required=True, metavar="RATE,DELAY", help="every host's link, e.g. 1gbit,1ms")
    run.add_argument("--straggler", action="append", metavar="HOST:RATE,DELAY",
                     help="host HOST gets this link instead (repeatable), e.g. 3:100mbit,5ms")
    run.add_argument("--report", metavar="PATH", help="also write the emulator's report (JSON) to PATH")
    run.add_argument("--timeout", type=float, default=3600.0, help="kill the job after this many seconds")
    run.add_argument("--mpiexec", help="MPICH (hydra) mpiexec to use (default: the one next to python)")
    run.add_argument("job", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    check = commands.add_parser("check", help="Allreduce against its bandwidth bound on emulated links")
    check.add_argument("--hosts", type=int, default=4, help="emulated hosts (default 4)")
    check.add_argument("--network", action="append", metavar="RATE,DELAY",
                       help="links to check (repeatable; default 1gbit,1ms and 100mbit,5ms)")
    check.add_argument("--bytes", type=int, default=16 << 20, help="Allreduce size in bytes (default 16 MiB)")
    check.add_argument("--repeats", type=int, default=5, help="timed Allreduces per link (default 5)")
    check.add_argument("--timeout", type=float, default=600.0, help="kill a probe after this many seconds")
    check.add_argument("--mpiexec", help="MPICH (hydra) mpiexec to use")
    check.add_argument("--json", metavar="PATH", help="also write the JSON to PATH")
    commands.add_parser("down", help="delete what killed clusters left behind")
    return parser


def run_job(args) -> int:
    job = args.job[1:] if args.job[:1] == ["--"] else args.job
    if not job:
        raise UsageError("run needs a command after --, e.g. -- python -m mpi4py -m mpisgd train")
    spec = ClusterSpec.parse(args.hosts, args.network, args.straggler)
    mpiexec = find_mpiexec(args.mpiexec)
    with Cluster(spec) as cluster:
        sys.stderr.write(f"mpisgd.bench.cluster: {spec.hosts} hosts up in slot {cluster.slot} "
                         f"({cluster.namespace(0)}...; {spec.network}"
                         + "".join(f"; host {h}: {link}" for h, link in sorted(spec.overrides.items())) + ")\n")
        command = cluster.mpiexec(mpiexec, job)
        process = subprocess.Popen(command, env=cluster_environment(), start_new_session=True)
        try:
            status = process.wait(timeout=args.timeout)
        except BaseException as stop:  # timeout, Ctrl-C, SIGTERM (SystemExit): the job goes first
            kill_group(process)
            if not isinstance(stop, (subprocess.TimeoutExpired, KeyboardInterrupt)):
                raise
            status = 124 if isinstance(stop, subprocess.TimeoutExpired) else 130
            sys.stderr.write(f"mpisgd.bench.cluster: job stopped ({'timeout' if status == 124 else 'interrupted'}): "
                             f"{shlex.join(job)}\n")
    emit_report(cluster.report, args.report)
    return status


def emit_report(report, path) -> None:
    """One line on stderr (faithful or not), and the whole report to ``path``."""
    if report is None:
        sys.stderr.write("mpisgd.bench.cluster: the link emulator left no report\n")
        return
    late = report["lateness_s"]
    p99 = "n/a" if late["p99"] is None else f"{late['p99'] * 1e3:.2f} ms"
    sys.stderr.write(f"mpisgd.bench.cluster: {'faithful' if report['faithful'] else 'NOT faithful'} "
                     f"({report['packets']} packets, 99% delivered within {p99} of the link model)\n")
    if path:
        with open(path, "w") as out:
            json.dump(report, out, indent=2)


def run_check(args) -> int:
    if args.hosts < 2 or args.bytes < 4 or args.repeats < 1:
        raise UsageError("check needs --hosts >= 2, --bytes >= 4 and --repeats >= 1")
    specs = [ClusterSpec.parse(args.hosts, network) for network in (args.network or ["1gbit,1ms", "100mbit,5ms"])]
    mpiexec = find_mpiexec(args.mpiexec)
    results = [check_link(mpiexec, spec, args.bytes, args.repeats, args.timeout) for spec in specs]
    document = json.dumps({"check": "allreduce_bandwidth_bound", "goal_over_bound": [1.0, 1.5],
                           "results": results}, indent=2)
    print(document)
    if args.json:
        with open(args.json, "w") as out:
            out.write(document + "\n")
    ok = all(r["within_goal"] and r["bytes_crossed_links"] and r["result_correct"] for r in results)
    return 0 if ok else 1


def run_down() -> int:
    gone = 0
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        with open(LOCK_DIR / f"slot{slot}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live cluster: leave it alone
            gone += clear_slot(slot)
    print(f"removed {gone} namespaces and links left by killed clusters")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return run_job(args)
        if args.command == "check":
            return run_check(args)
        return run_down()
    except UsageError as error:
        sys.stderr.write(f"python -m mpisgd.bench.cluster: error: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
