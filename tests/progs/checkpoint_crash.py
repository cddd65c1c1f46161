"""A rank killed while it writes a checkpoint: the previous checkpoint must survive whole.

``checkpoint_crash.py DIR``: 2 epochs of sync on digits (seed 1) with a
checkpoint every 10 steps into DIR; rank 1, writing the second checkpoint,
writes half of its file, fsyncs it and kills itself with SIGKILL (the job
ends). The test then resumes with the command line.
"""

import os
import signal
import sys

import torch
from _common import world

from mpisgd.train import TrainConfig, run

comm = world()
original_save = torch.save


def torn_save(state, file):
    """Rank 1's second checkpoint: half the bytes reach the disk, then the process dies."""
    if comm.rank == 1 and "ckpt-000002" in getattr(file, "name", ""):
        original_save(state, file)
        size = file.tell()
        file.truncate(size // 2)
        file.flush()
        os.fsync(file.fileno())
        print("KILLING-WRITER", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    original_save(state, file)


torch.save = torn_save
run(TrainConfig(epochs=2, seed=1, quiet=True, checkpoint_dir=sys.argv[1], checkpoint_every="10"), comm=comm)
raise AssertionError("the writer was not killed")
