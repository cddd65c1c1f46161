"""Which processes a SLURM signal reaches: every rank writes DIR/ready.RANK, then waits (sleeping,
up to 60 s) for SIGUSR1 and prints ``rank R got SIGUSR1`` or ``rank R got nothing``."""

import signal
import sys
import time
from pathlib import Path

from mpi4py import MPI

got = []
signal.signal(signal.SIGUSR1, lambda number, frame: got.append(number))
comm = MPI.COMM_WORLD
Path(sys.argv[1], f"ready.{comm.rank}").touch()
start = time.monotonic()
while not got and time.monotonic() - start < float(sys.argv[2]):
    time.sleep(0.05)
print(f"rank {comm.rank} got {'SIGUSR1' if got else 'nothing'}", flush=True)
comm.Barrier()
