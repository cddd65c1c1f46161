"""The paper-reproduction suite: ``python -m mpisgd.bench.suite`` (``make bench``).

Runs, on the emulated cluster (:mod:`.cluster`; needs root), one after the
other:

0. ``check``: the emulation itself (an Allreduce against its bandwidth bound);
1. ``cocod-1g``, ``cocod-100m``: ``overlap`` (CoCoD-SGD against sync and
   Local SGD) at 1 Gbit/s + 1 ms and at 100 Mbit/s + 5 ms; ``cocod-balanced``
   at 1 Gbit/s + 1 ms with batches of 256, where one all-reduce costs about
   one local step;
2. ``divshare``: ``stragglers`` (DivShare against AD-PSGD and Swift) with
   host 3 at 100 Mbit/s + 5 ms, the others at 1 Gbit/s + 1 ms;
   ``divshare-slow-node``: the same with host 3 also computing 4x slower;
   ``divshare-10m``: host 3 at 10 Mbit/s + 20 ms and computing 4x slower;
3. ``gossip``: Elastic Gossip against Gossiping SGD and all-reduce SGD;
4. ``scaling``: time per iteration and bytes per rank against model size;
5. ``failures``: asynchronous against synchronous EASGD with host 3 at
   100 Mbit/s + 5 ms (5 hosts: the server's one more), and dynamic
   weighting against plain when a worker falls silent;
6. ``asyvrsc``: AsyVRSC-Distributed and -Shared against their sequential
   twin, 1 to 4 workers (one machine, no emulated links);
7. ``privacy``: DP-SGD, NSGD, Auto-S and DP-PSAC at epsilon 1, 3 and 8
   over seeds, and mpisgd's DP step against Opacus's (one machine, no
   emulated links);
8. ``leaders-4``, ``leaders-8``: ``leaders`` (LSGD against EASGD, sync the
   reference, on the cnn at the LSGD paper's defaults) with 4 and 8 hosts
   at 1 Gbit/s + 1 ms;
9. ``cocod-cnn-1g``, ``cocod-cnn-100m``: ``overlap`` on the cnn at 1 Gbit/s
   + 1 ms and at 100 Mbit/s + 5 ms;
10. ``divshare-sweep-{digits,movielens}-{iid,dirichlet}``: ``stragglers``
    with 16 hosts, 2 of them (0.12) at 20 Mbit/s + 5 ms and the others at
    100 Mbit/s + 5 ms, DivShare's J in {3, 6, 9, 12} and Omega in {1, 2, 10}
    beside AD-PSGD and Swift, IID and Dirichlet(0.1) shards.

Each writes its JSON report and its runs' metrics under ``--out`` (default
``runs/suite``); ``python -m mpisgd report`` draws the plots of each
experiment into ``docs/results/<name>/``, and :mod:`.results` writes
``docs/results.md`` from the reports. ``--only`` picks experiments,
``--quick`` runs every experiment at smoke-test size (minutes) into
``runs/suite-quick`` without touching docs unless ``--doc`` is given.
Without root it stops with status 2 and the reason.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..errors import UsageError
from .cluster import unavailable
from .results import write_results

ONE_GBIT, SLOW = "1gbit,1ms", "100mbit,5ms"
TRAIN = ["--hidden", "256"]  # an mlp of about 87,000 parameters on digits: communication matters

SWEEP = ["-m", "mpisgd.bench", "stragglers", "--ranks", "16", "--network", SLOW, "--stragglers", "0.12:20mbit,5ms",
         "--peers", "3,6,9,12", "--fragments", "1,2,10"]
DATA = {"digits": ["--hidden", "32"],
        "movielens": ["--dataset", "movielens", "--model", "mf", "--hidden", "8", "--batch-size", "256", "--lr", "0.3",
                      "--target-rmse", "0.98"]}
SWEEP_FULL = {"digits": ["--time-budget", "15", "--repeats", "1", "--target-accuracy", "0.85"],
              "movielens": ["--time-budget", "30", "--repeats", "1"]}

# name -> (command, what only the full run adds; --quick replaces it by the benchmark's --quick)
EXPERIMENTS = {
    "check": (["-m", "mpisgd.bench.cluster", "check"], []),
    "cocod-1g": (["-m", "mpisgd.bench", "overlap", "--network", ONE_GBIT], [*TRAIN, "--epochs", "20"]),
    "cocod-100m": (["-m", "mpisgd.bench", "overlap", "--network", SLOW], [*TRAIN, "--epochs", "20"]),
    # more compute per step (batch 256): one all-reduce costs about one local step
    "cocod-balanced": (["-m", "mpisgd.bench", "overlap", "--network", ONE_GBIT],
                       [*TRAIN, "--batch-size", "256", "--lr", "0.2", "--epochs", "60"]),
    "divshare": (["-m", "mpisgd.bench", "stragglers", "--network", ONE_GBIT, "--straggler", f"3:{SLOW}"],
                 [*TRAIN, "--time-budget", "20"]),
    # the straggler is a slow node, as in the paper: its slow link, and 4x slower steps
    "divshare-slow-node": (["-m", "mpisgd.bench", "stragglers", "--network", ONE_GBIT, "--straggler", f"3:{SLOW}"],
                           [*TRAIN, "--time-budget", "20", "--slow-factor", "4"]),
    # a much slower straggler: 10 Mbit/s + 20 ms and 4x slower steps
    "divshare-10m": (["-m", "mpisgd.bench", "stragglers", "--network", ONE_GBIT, "--straggler", "3:10mbit,20ms"],
                     [*TRAIN, "--time-budget", "20", "--slow-factor", "4"]),
    "gossip": (["-m", "mpisgd.bench", "gossip", "--network", ONE_GBIT], TRAIN),
    # master-worker EASGD, 5 hosts: async vs sync with host 3 a straggler; dynamic vs plain weighting, host 4 silent
    "failures": (["-m", "mpisgd.bench", "failures", "--network", ONE_GBIT, "--straggler", f"3:{SLOW}"], []),
    # one machine, no emulated links: a master and 1..4 workers, or 1..4 ranks sharing x
    "asyvrsc": (["-m", "mpisgd.bench", "asyvrsc", "--ranks", "5"], []),
    "scaling": (["-m", "mpisgd.bench", "scaling", "--network", ONE_GBIT], []),
    # one machine, no emulated links: accuracy and epsilon spent of the four clipping rules; Opacus on one rank
    "privacy": (["-m", "mpisgd.bench", "privacy", "--ranks", "4"], []),
    # LSGD against EASGD (sync the reference) on the cnn at the paper's defaults (leaders.py), 4 and 8 hosts
    "leaders-4": (["-m", "mpisgd.bench", "leaders", "--ranks", "4", "--network", ONE_GBIT], []),
    "leaders-8": (["-m", "mpisgd.bench", "leaders", "--ranks", "8", "--network", ONE_GBIT], []),
    # CoCoD-SGD against Local SGD and sync on the cnn (13,706 parameters; ~5 ms of compute per step alone)
    "cocod-cnn-1g": (["-m", "mpisgd.bench", "overlap", "--model", "cnn", "--network", ONE_GBIT], ["--epochs", "20"]),
    "cocod-cnn-100m": (["-m", "mpisgd.bench", "overlap", "--model", "cnn", "--network", SLOW], ["--epochs", "20"]),
    # DivShare's J x Omega sweep (the artifact's values), 16 hosts, 0.12 of them (2) at 1/5 of the bandwidth,
    # IID and Dirichlet 0.1, digits and MovieLens; AD-PSGD and Swift side by side (docs/results.md section 10)
    **{f"divshare-sweep-{data}-{split}": ([*SWEEP, *DATA[data], "--partition", partition], SWEEP_FULL[data])
       for data in DATA for split, partition in (("iid", "iid"), ("dirichlet", "dirichlet:0.1"))},
    # the DivShare paper's own scale where it fits: 60 hosts, 7 (0.12) slow, two J, one Omega
    "divshare-sweep-digits-dirichlet-60": ([*SWEEP[:4], "60", *SWEEP[5:9], "--peers", "3,12", "--fragments", "2",
                                            *DATA["digits"], "--partition", "dirichlet:0.1"],
                                           ["--time-budget", "30", "--repeats", "3", "--target-accuracy", "0.8"]),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpisgd.bench.suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for the reports and metrics (default runs/suite, "
                                      "--quick runs/suite-quick)")
    parser.add_argument("--doc", help="the results page to write (default docs/results.md; with --quick: none)")
    parser.add_argument("--only", help=f"experiments to run, comma-separated ({','.join(EXPERIMENTS)})")
    parser.add_argument("--quick", action="store_true", help="every experiment at smoke-test size")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per experiment (default 1800)")
    return parser


def command_of(name: str, out: Path, quick: bool) -> list:
    base, full = EXPERIMENTS[name]
    command = [sys.executable, *base, "--json", str(out / f"{name}.json")]
    if name == "check":
        return command + (["--bytes", str(1 << 20), "--repeats", "2"] if quick else full)
    return command + ["--metrics-dir", str(out / name)] + (["--quick"] if quick else full)


def run_experiment(name: str, out: Path, quick: bool, timeout: float) -> dict:
    command = command_of(name, out, quick)
    shutil.rmtree(out / name, ignore_errors=True)  # an earlier run's metrics (the runs append to their files)
    sys.stderr.write(f"[mpisgd.bench.suite] {name}: {' '.join(command[1:])}\n")
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # the benchmark tears its emulated cluster down on SIGTERM
        status = _wait_for(process, 124)
    except KeyboardInterrupt:  # the benchmark got the Ctrl-C too and tears down: let it
        _wait_for(process, 130)
        raise
    seconds = time.monotonic() - start
    sys.stderr.write(f"[mpisgd.bench.suite] {name}: status {status} after {seconds:.0f} s\n")
    return {"status": status, "seconds": seconds, "command": " ".join(["python", *command[1:]])}


def _wait_for(process, status: int) -> int:
    """Give a stopping benchmark a minute to tear its cluster down, then kill it; ``status``."""
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return status


def plot(name: str, out: Path, doc: Path) -> None:
    """Plots of each experiment's first run per algorithm (one line per algorithm) into docs/results/NAME."""
    metrics = out / name
    if not metrics.is_dir():
        return
    folders = sorted(p for p in metrics.iterdir() if p.is_dir()) or [metrics]
    if name == "scaling":
        return  # one epoch per size: its figure is drawn by .results from the report
    for folder in folders:
        runs = sorted(str(path) for path in folder.glob("*-0.jsonl"))
        if not runs:
            continue
        target = doc.parent / "results" / name / (folder.name if folder != metrics else "")
        subprocess.run([sys.executable, "-m", "mpisgd", "report", *runs, "--out", str(target)],
                       stdout=subprocess.DEVNULL, check=False)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = [n.strip() for n in (args.only or ",".join(EXPERIMENTS)).split(",") if n.strip()]
        unknown = [n for n in names if n not in EXPERIMENTS]
        if unknown or not names:
            raise UsageError(f"unknown experiment(s) {', '.join(unknown) or '(none)'}; known: {', '.join(EXPERIMENTS)}")
        reason = unavailable()
        if reason:
            raise UsageError(f"the suite runs on the emulated cluster, which is unavailable here: {reason}")
    except UsageError as error:
        sys.stderr.write(f"python -m mpisgd.bench.suite: error: {error}\n")
        return 2
    out = Path(args.out or ("runs/suite-quick" if args.quick else "runs/suite"))
    out.mkdir(parents=True, exist_ok=True)
    doc = Path(args.doc) if args.doc else (None if args.quick else Path("docs/results.md"))
    log_path = out / "suite.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    for name in names:
        log[name] = run_experiment(name, out, args.quick, args.timeout)
        log_path.write_text(json.dumps(log, indent=2) + "\n")
    if doc is not None:
        for name in names:
            plot(name, out, doc)
        write_results(out, doc, log)
        sys.stderr.write(f"[mpisgd.bench.suite] wrote {doc}\n")
    return 0 if all(log[name]["status"] == 0 for name in names) else 1


if __name__ == "__main__":
    sys.exit(main())
