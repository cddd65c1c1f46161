"""A stand-in for ``python -m mpisgd train`` that follows its preemption contract, to test
jobs/requeue.sbatch's control flow quickly: steps every 0.1 s, writes DIR/latest after step 3;
on SIGUSR1 or SIGTERM every rank exits 75 once the checkpoint is written; with ``--resume`` it
needs DIR/latest and finishes at once. Metrics: ``start``/``preempted``/``resumed`` records, then a
summary. Not the trainer: tests/test_slurm.py runs the real one too."""

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from mpi4py import MPI

parser = argparse.ArgumentParser()
parser.add_argument("command")
parser.add_argument("--checkpoint-dir", type=Path, required=True)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--metrics", required=True)
args, _ = parser.parse_known_args()
comm = MPI.COMM_WORLD
latest = args.checkpoint_dir / "latest"


def record(**fields):
    if comm.rank == 0:
        with open(args.metrics, "a") as out:
            out.write(json.dumps(fields) + "\n")


if args.resume:
    if not latest.exists():
        sys.exit(f"standin: --resume but no {latest}")
    record(event="resumed", checkpoint_step=int(latest.read_text()))
    record(event="summary", final_accuracy=1.0, world_size=comm.size)
    sys.exit(0)

stop = []
for number in (signal.SIGUSR1, signal.SIGTERM):
    signal.signal(number, lambda n, frame: stop.append(n))
record(event="start")
for step in range(1, 1200):
    time.sleep(0.1)
    if comm.rank == 0 and step == 3:
        args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        latest.write_text(str(step))
    if comm.allreduce(bool(stop), op=MPI.LOR) and latest.exists():
        record(event="preempted", step=step, signal=signal.Signals(stop[0]).name if stop else "peer")
        comm.Barrier()
        sys.exit(75)
sys.exit("standin: no signal came")
