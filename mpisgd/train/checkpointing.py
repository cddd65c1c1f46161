"""When a run checkpoints, how it stops on a preemption signal, and how it resumes (``--checkpoint-dir``).

- **Periodic** (``--checkpoint-every N`` steps or ``Ns`` seconds): the
  synchronous family checkpoints at the step boundary where the count is a
  multiple of N (every rank at the same step, no communication needed), or
  where rank 0 found N seconds passed since the last one.
- **Preemption**: SIGTERM or SIGUSR1 (what SLURM sends before a time limit or
  a preemption, ``sbatch --signal``) only raises a flag. The synchronous
  family agrees on the flags at every step boundary through a non-blocking
  all-reduce posted one step earlier (so every rank acts at the same step,
  and no rank waits for it: it completed during the step); then every rank
  checkpoints and the run ends with :class:`Preempted` (status 75,
  ``EX_TEMPFAIL``: try again). The asynchronous algorithms stop on the flag
  as on a spent time budget: each rank stops on its own, the algorithm
  finishes (nothing left in flight, messages delivered), and the ranks there
  checkpoint together before ending with :class:`Preempted`.
  A signal whose disposition at start is not the default keeps it: MPICH's
  survivable launch ignores SIGUSR1 (hydra's failure notice,
  docs/failures.md), and a run embedded in a thread installs nothing.
- **Resume** (``--resume``): the latest complete checkpoint of the directory,
  refused when it is from another world size, algorithm or model.
"""

import os
import signal
import threading
import time

import numpy as np

from ..comm import activity
from ..errors import MPISGDError, UsageError
from . import resume
from .checkpoint import IDENTITY, CheckpointStore, parse_every

REQUEUE_STATUS = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, run the job again
SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(Exception):
    """The run stopped on a preemption signal after writing a checkpoint (exit with REQUEUE_STATUS)."""


class SignalFlag:
    """SIGTERM/SIGUSR1 set ``received`` (the signal's name) and do nothing else; ``close()`` puts back
    the previous handlers."""

    def __init__(self):
        self.received, self.previous = None, {}
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        for name in SIGNALS:
            number = getattr(signal, name)
            if signal.getsignal(number) is signal.SIG_DFL:
                self.previous[number] = signal.signal(number, self._note)

    def _note(self, number, frame) -> None:
        self.received = signal.Signals(number).name

    def close(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


class Checkpointing:
    """A run's checkpoints: ``after_step`` at every step boundary, ``at_stop`` at the end of an
    asynchronous run, ``resume`` before the first step. Built only with ``--checkpoint-dir``."""

    def __init__(self, config, harness, asynchronous: bool):
        self.harness, self.asynchronous = harness, asynchronous
        self.every_steps, self.every_s = parse_every(config.checkpoint_every)
        self.store = CheckpointStore(config.checkpoint_dir, harness.rank, harness.size)
        self.identity = {"world_size": harness.size, **{k: getattr(config, k) for k in IDENTITY[1:]}}
        self.signals = SignalFlag()
        self.number, self.last_at, self.pending = 0, time.perf_counter(), None

    # -- the synchronous family: decided at each step boundary -------------------------
    def _agreed(self) -> tuple:
        """(a rank was signalled, rank 0 found a checkpoint due by time) as posted one step ago."""
        if self.pending is None:
            return False, False
        request, flags = self.pending
        request.wait()
        return bool(flags[0]), bool(flags[1])

    def _post(self) -> None:
        due = self.every_s is not None and self.harness.rank == 0 and \
            time.perf_counter() - self.last_at >= self.every_s
        flags = np.array([self.signals.received is not None, due], dtype=np.int64)
        self.pending = (self.harness.iallreduce(flags), flags)

    def after_step(self, trainer, position: dict) -> bool:
        """At a step boundary: checkpoint when due; True when the run must stop (preempted).
        Asynchronous algorithms only report their own signal here (they stop, then :meth:`at_stop`)."""
        if self.asynchronous:
            return self.signals.received is not None
        stopping, due = self._agreed()
        if not stopping:
            self._post()
        periodic = self.every_steps is not None and trainer.step % self.every_steps == 0
        if stopping or due or periodic:
            self.save(trainer, position, self.harness)
        return stopping

    def preempted(self, trainer) -> None:
        """The synchronous family stopped on a signal: the checkpoint is written; end the run."""
        raise Preempted(self._message(trainer))

    def at_stop(self, trainer, position: dict, comm) -> None:
        """An asynchronous run has finished and been evaluated, on the ranks of ``comm``: if any was
        signalled, they checkpoint together and the run ends with :class:`Preempted`."""
        if not self.asynchronous:
            return
        flags = np.array([self.signals.received is not None], dtype=np.int64)
        comm.allreduce(flags)
        if flags[0]:
            self.save(trainer, position, comm)
            raise Preempted(self._message(trainer))

    def _message(self, trainer) -> str:
        what = self.signals.received or "a signal on another rank"
        return (f"preempted ({what}) at step {trainer.step}: checkpoint {self.store.directory}/"
                f"{self.store.name(self.number)} written; run again with --resume to continue")

    def close(self) -> None:
        """Complete the last agreement posted, give the signals back."""
        if self.pending is not None:
            self.pending[0].wait()
            self.pending = None
        self.signals.close()

    # -- writing and reading -------------------------------------------------------------
    def save(self, trainer, position: dict, comm) -> None:
        """Every rank of ``comm`` writes its file; rank 0 then commits the checkpoint."""
        self.number += 1
        name, problem = self.store.name(self.number), ""
        try:
            self.store.write_rank(name, resume.capture(trainer, position))
        except OSError as error:
            problem = f"rank {self.harness.rank} could not write its checkpoint: {error}"
        comm.check_all(not problem, problem, MPISGDError)
        if comm.rank == 0:
            self.store.commit(name, {**self.identity, "step": trainer.step, "epoch": position["epoch"],
                                     "ranks": comm.size, "time": time.time()})
        self.last_at = time.perf_counter()
        if activity.ON:  # a long write is progress, not a stall (--stall-timeout)
            activity.progress()

    def resume(self, trainer) -> dict:
        """Load the latest checkpoint into ``trainer`` on every rank; returns the position to go on from."""
        name, problem, position = self.harness.bcast_object(self.store.latest()), "", None
        try:
            if name is None:
                raise UsageError(f"--resume: no checkpoint in {self.store.directory} (no file "
                                 f"{os.path.join(self.store.directory, 'latest')})")
            self.store.check_matches(name, self.identity)
            position = resume.restore(trainer, self.store.read_rank(name))
        except (UsageError, OSError, KeyError) as error:
            problem = str(error) if isinstance(error, UsageError) else f"--resume: rank {self.harness.rank}: {error!r}"
        self.harness.check_all(not problem, problem, UsageError)
        self.number = self.store.number(name)
        return position
