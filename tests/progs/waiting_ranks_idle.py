"""Ranks that wait for a late peer do not burn a core (ranks often outnumber cores).

1. The exit protocol: the last rank computes for ``LATE_S`` seconds before
   it closes its messenger; the others are already in ``close()``.
2. AD-PSGD's pairwise wait: every passive worker computes for ``LATE_S``
   seconds before it answers; the active workers wait for their replies.

Oracle: a waiting rank's process CPU time over the wait is well below the
wall time it waited (a spinning rank would use a whole core, or its share of
one when ranks outnumber cores). Rank 0 prints each part's CPU fractions.
"""

import os
import time

import numpy as np
from _common import done, no_torch, world

from mpisgd import FlatParams
from mpisgd.comm import Communicator, Messenger
from mpisgd.gossip import ADPSGD

comm = world()
p, rank = comm.size, comm.rank
LATE_S = 2.0
MAX_CPU_FRACTION = float(os.environ.get("MAX_CPU_FRACTION", 0.25))  # a knob to measure without failing


def compute(seconds):
    """A rank still training: busy on its core."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def measured(wait):
    """(CPU fraction, wall seconds) of this process over ``wait()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    wait()
    wall = time.perf_counter() - wall
    return (time.process_time() - cpu) / wall, wall


def check(what, waiting, result):
    """Every waiting rank waited for the late one and used little CPU meanwhile."""
    results = comm.gather(result if waiting else None)
    if rank == 0:
        fractions = {r: round(got[0], 3) for r, got in enumerate(results) if got is not None}
        print(f"{what}: CPU fraction of the waiting ranks {fractions}", flush=True)
    if waiting:
        fraction, wall = result
        assert wall >= 0.5 * LATE_S, f"rank {rank} waited only {wall:.2f} s at {what}"
        assert fraction < MAX_CPU_FRACTION, f"rank {rank} used {fraction:.0%} of a core while waiting at {what}"


# 1. the exit protocol: the last rank is late
messenger = Messenger(Communicator(comm))
late = rank == p - 1
if late:
    compute(LATE_S)
    messenger.close()
    result = None
else:
    result = measured(messenger.close)
check("close()", not late and p > 1, result)

# 2. AD-PSGD: every passive worker is late; the active workers wait for its answer
x = np.zeros(40)
adpsgd = ADPSGD(FlatParams(x), comm=comm)
neighbours = adpsgd.neighbours()
if adpsgd.active and neighbours:
    result = measured(lambda: adpsgd.average_with(neighbours[0]))
else:
    compute(LATE_S)
    result = None
adpsgd.leave()  # a passive worker answers while it leaves
check("AD-PSGD average_with()", adpsgd.active and bool(neighbours), result)
no_torch()
done(comm)
