"""The GPU check with one check where rank 1 blocks in MPI forever: the watchdog must record
the time-out in the report and end the job. Arguments go to the check program."""

import sys
import time

from mpisgd.gpucheck import runner


def check_stuck(ctx):
    if ctx.world.rank == 1:
        print(f"FAILING-AT {time.time()}", flush=True)
        ctx.world.recv(source=0, tag=99)  # never sent: rank 0 waits for rank 1's outcome


runner.CHECKS[:] = [check_stuck]
sys.exit(runner.main(sys.argv[1:]))
