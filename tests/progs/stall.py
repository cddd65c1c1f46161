"""``mpisgd train ARGS...`` where rank STUCK stops calling into MPI after its local step STEP: it sleeps
for good (prints ``FAILING-AT <time>`` first), as a rank stuck in user code would. The stall watchdog
(``--stall-timeout``) must end the job.

Usage: ``mpiexec -n N python tests/progs/stall.py STUCK STEP [TRAIN ARGS...]``
"""

import sys
import time

from mpi4py import MPI

from mpisgd.cli import main
from mpisgd.train.step import LocalStep

stuck, at, *arguments = sys.argv[1:]
if MPI.COMM_WORLD.Get_rank() == int(stuck):
    step_once, taken = LocalStep.__call__, [0]

    def step_then_hang(self):
        if taken[0] == int(at):
            print(f"FAILING-AT {time.time()}", flush=True)
            while True:
                time.sleep(3600)  # stuck outside MPI, forever
        taken[0] += 1
        return step_once(self)

    LocalStep.__call__ = step_then_hang
sys.exit(main(["train", *arguments]))
