"""Statistics: CoCoD's time blocked in communication is near zero when one all-reduce
takes less than `period` local steps; Local SGD blocks for each of its all-reduces.

Compute is played by sleeping (like GPU work, it leaves the CPU to MPI) in 1 ms
slices, with progress() between slices, as the torch binding does from its
backward hooks. The model is large (16 MB) so that an all-reduce is not free.
"""

import time

import numpy as np
from _common import done, world

from mpisgd import FlatParams
from mpisgd.collective import CoCoD, PeriodicAveraging

comm = world()
numel, period, rounds, step_s = 2_000_000, 4, 6, 0.02


def train(algorithm_class, **options):
    x = np.zeros(numel)
    algorithm = algorithm_class(FlatParams(x), comm=comm, period=period, **options)
    comm.Barrier()
    for _ in range(period * rounds):
        end = time.perf_counter() + step_s
        while time.perf_counter() < end:  # the local step
            time.sleep(0.001)
            algorithm.progress()
        x += 1.0
        algorithm.after_step()
    stats = algorithm.statistics()  # the rounds only (finish() ends with one blocking average)
    algorithm.finish()
    algorithm.close()
    return stats


local = train(PeriodicAveraging)
cocod = train(CoCoD)
assert cocod["bytes_sent"] >= local["bytes_sent"] > 0
ratio = cocod["wait_s"] / local["wait_s"]
if comm.rank == 0:
    print(f"blocked: local {local['wait_s']:.3f} s, cocod {cocod['wait_s']:.3f} s "
          f"(progress {cocod['progress_s']:.3f} s); ratio {ratio:.2f}", flush=True)
assert ratio < 0.3, ratio
done(comm)
