"""``mpisgd.train.run(config, throttle=...)``: a straggler with a throttled uplink, from Python.

``train_throttled.py ALGORITHM``: on digits (seed 0, 4 ranks) the last rank
is a straggler: 3x slower steps and an uplink throttled to 20 Mbit/s by a
``mpisgd.comm.Throttle`` plugged into the algorithm's messenger; a 3 s time
budget. Rank 0 prints ``SUMMARY <json>``.

``train_throttled.py sync --expect-usage-error``: an algorithm whose
messages do not go through an outbox (sync: no messenger; gossip: pairwise
exchanges) given a throttle on one rank only: every rank must raise
UsageError (a plain object stands in for the throttle; it is refused before
use).
"""

import json
import sys

from _common import done, world

from mpisgd.errors import UsageError
from mpisgd.train import TrainConfig, run

comm = world()
algorithm = sys.argv[1]
slow = comm.size - 1
config = TrainConfig(algorithm=algorithm, epochs=100, seed=0, quiet=True, time_budget=3.0,
                     slow_ranks=str(slow), slow_factor=3.0)
if "--expect-usage-error" in sys.argv:
    try:
        run(config, comm=comm, throttle=object() if comm.rank == slow else None)
    except UsageError as error:
        assert "sends nothing through one" in str(error), error
        print(f"rank {comm.rank}: UsageError: {error}", flush=True)
    else:
        raise AssertionError(f"rank {comm.rank}: no UsageError")
else:
    from mpisgd.comm import Throttle

    summary = run(config, comm=comm, throttle=Throttle(20e6 / 8) if comm.rank == slow else None)
    if comm.rank == 0:
        print("SUMMARY " + json.dumps(summary), flush=True)
done(comm)
