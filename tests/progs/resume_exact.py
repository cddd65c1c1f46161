"""Exact resume: a run preempted mid-epoch and resumed ends with the uninterrupted run's parameters, bit for bit.

``resume_exact.py DIR ALGORITHM[:MUTATION][,...]``: for each
algorithm (2 epochs of digits, every rank's local step 17 raising SIGUSR1 in
its own process, so the ranks agree to stop at step 18):

1. an uninterrupted run (no checkpoint directory): digest A;
2. the same run with ``--checkpoint-dir``: it must stop with ``Preempted``
   after 18 of its 46 steps;
3. ``--resume``: it must take the remaining 28 steps; digest B.

Rank 0 prints ``DIGESTS <json>`` {algorithm: [A, B, steps taken by 3]}.
A MUTATION makes that algorithm's resume forget part of the state (the
digests must then differ): ``state`` restores nothing but the position,
``rngs`` no random stream, ``sampler`` not the data sampler's place.
"""

import json
import os
import signal
import sys

from _common import done, world

from mpisgd.train import TrainConfig, run
from mpisgd.train import resume as resume_module
from mpisgd.train import rngs
from mpisgd.train.checkpointing import Preempted
from mpisgd.train.private_step import PrivateStep
from mpisgd.train.step import LocalStep

comm = world()
directory, runs = sys.argv[1], [entry.partition(":")[::2] for entry in sys.argv[2].split(",")]
SIGNAL_AT = 17
taken = {"steps": 0, "armed": False}


def counting(call):
    """The local step, counted; the SIGNAL_AT-th sends SIGUSR1 to this process when armed."""
    def counted(self):
        loss = call(self)
        taken["steps"] += 1
        if taken["armed"] and taken["steps"] == SIGNAL_AT:
            os.kill(os.getpid(), signal.SIGUSR1)  # as SLURM's --signal would, on every rank
        return loss

    return counted


LocalStep.__call__ = counting(LocalStep.__call__)
PrivateStep.__call__ = counting(PrivateStep.__call__)
original_restore = resume_module.restore


def forgetting(mutation):
    """The restore of a resume that forgets part of the state."""
    def restore(trainer, state):
        if mutation == "state":
            position = dict(state["position"])
            trainer.step = position.pop("step")
            return position
        forgotten = dict(state)
        if mutation == "rngs":
            forgotten["rngs"] = rngs.capture(resume_module._streams(trainer))  # the fresh run's own streams
        elif mutation == "sampler":
            forgotten["sampler"] = None
        return original_restore(trainer, forgotten)

    return restore

OPTIONS = {"gossip": {"gossip_seed": 3}, "local": {"period": 4}}
PRIVATE = {"dp": "dpsgd", "dp_noise": 1.0, "dp_seed": 5, "dp_sampling": "shuffle"}  # NAME+dp: a seeded DP run


def outcome(summary) -> str:
    """The final parameters' digest, and the privacy spent when private."""
    return summary["params_digest"] + (f" epsilon {summary['epsilon_spent']}" if "epsilon_spent" in summary else "")


digests = {}
for name, mutation in runs:
    resume_module.restore = forgetting(mutation) if mutation else original_restore
    algorithm, private = name.removesuffix("+dp"), name.endswith("+dp")
    base = dict(algorithm=algorithm, epochs=2, seed=0, quiet=True, algorithm_options=OPTIONS.get(algorithm, {}),
                **(PRIVATE if private else {}))
    taken["steps"] = 0
    uninterrupted = outcome(run(TrainConfig(**base), comm=comm))
    checkpoints = os.path.join(directory, name)
    taken["steps"], taken["armed"] = 0, True
    try:
        run(TrainConfig(**base, checkpoint_dir=checkpoints), comm=comm)
        raise AssertionError(f"{name}: the run was not preempted")
    except Preempted:
        pass
    assert taken["steps"] == SIGNAL_AT + 1, (name, taken)
    taken["steps"], taken["armed"] = 0, False
    resumed = outcome(run(TrainConfig(**base, checkpoint_dir=checkpoints, resume=True), comm=comm))
    digests[name] = [uninterrupted, resumed, taken["steps"]]
if comm.rank == 0:
    print("DIGESTS " + json.dumps(digests), flush=True)
done(comm)
