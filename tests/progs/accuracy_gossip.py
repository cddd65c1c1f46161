"""Digits accuracy of the gossip family on a non-IID partition, with and without communication.

``accuracy_gossip.py PARTITION EPOCHS ALGORITHM...``: on digits (seed 0,
every rank), trains sync, then each ALGORITHM as it is and with its averaging
replaced by a no-op (``_mutations``: training alone, then the one
average of ``finish()``), all in one job (torch is imported once). Rank 0
prints ``RESULT {"sync": acc, "ALGORITHM": acc, "ALGORITHM/off": acc, ...}``.
"""

import json
import sys

import _mutations
from _common import done, world

from mpisgd.train import TrainConfig, run

comm = world()
partition, epochs, algorithms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def accuracy(algorithm):
    config = TrainConfig(algorithm=algorithm, epochs=epochs, seed=0, quiet=True, partition=partition)
    return run(config, comm=comm)["final_accuracy"]


results = {"sync": accuracy("sync")}
for name in algorithms:
    results[name] = accuracy(name)
    if name in _mutations.NOOP:
        undo = _mutations.apply(name)
        results[f"{name}/off"] = accuracy(name)
        undo()
if comm.rank == 0:
    print("RESULT " + json.dumps(results), flush=True)
done(comm)
