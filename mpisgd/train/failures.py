"""Worker failures injected on purpose (tests, benchmarks): ``--fail RANK:KIND@STEP[,...]``.

At its local step ``STEP`` (counted from 1) worker rank ``RANK``:

===============  ==============================================================
``slow:FACTOR``  takes ``FACTOR`` times longer for every step from then on
                 (the straggler mechanism of :mod:`.straggler`)
``silent``       stops sending, for good, and trains on alone
                 (``algorithm.silence()``); its servers count it lost after
                 ``--timeout`` seconds; it still takes part in the end of
                 the run (it is alive)
``exit``         leaves the protocol (``finish()``: its servers see it
                 leave), stops training and ends its process with status 0
``kill``         ends its own process with ``SIGKILL`` (``kill -9``): what
                 the other ranks see depends on the MPI library and the
                 launcher (docs/failures.md)
===============  ==============================================================

Who may fail how (a bad specification is a UsageError on every rank):

- master-worker algorithms: the workers, every kind;
- gossip algorithms: any rank but 0 (it writes the metrics), ``slow`` and
  ``kill``; the others go on without a killed rank where the launch allows
  it (docs/failures.md);
- every other algorithm (the collective family): any rank, ``slow`` and
  ``kill``; a killed rank ends the job, which names it.
 A failure whose step is never reached happens
when this rank's training ends (an ``exit`` or ``kill`` rank never takes part
in the end of the run).
"""

import os
import signal
import sys
import time
from dataclasses import dataclass

from ..errors import UsageError
from .straggler import slow_down

KINDS = ("slow", "silent", "exit", "kill")
GONE = ("exit", "kill")  # kinds after which the rank is no longer part of the run


@dataclass(frozen=True)
class Failure:
    rank: int
    kind: str  # one of KINDS
    step: int  # the local step (from 1) at which it happens
    factor: float = 1.0  # slow: how many times longer each step takes


def _one(text: str) -> Failure:
    usage = (f"--fail takes RANK:KIND@STEP with KIND slow:FACTOR, silent, exit or kill (e.g. 3:kill@40), "
             f"got {text!r}")
    rank, _, rest = text.partition(":")
    kind, at, step = rest.rpartition("@")
    kind, _, factor = kind.partition(":")
    try:
        failure = Failure(int(rank), kind, int(step), float(factor) if factor else 1.0)
    except ValueError:
        raise UsageError(usage) from None
    if not at or kind not in KINDS or failure.rank < 0 or failure.step < 1 or (factor and kind != "slow"):
        raise UsageError(usage)
    if kind == "slow" and failure.factor < 1:
        raise UsageError(f"--fail {text}: the slow-down FACTOR must be at least 1")
    return failure


def parse_failures(text: str) -> list:
    """``"3:kill@40,2:slow:4@10"`` -> [Failure(3, "kill", 40), Failure(2, "slow", 10, 4.0)]; one per rank."""
    failures = [_one(part.strip()) for part in text.split(",") if part.strip()]
    ranks = [f.rank for f in failures]
    if len(set(ranks)) < len(ranks):
        raise UsageError(f"--fail names a rank more than once: {text!r}")
    return failures


def check_failures(failures: list, workers: list, algorithm: str, *, size: int, gossip: bool = False) -> None:
    """UsageError unless each failure is one the family of ``algorithm`` allows (see above);
    ``workers``: a master-worker algorithm's worker ranks (empty for the other families)."""
    if not workers:
        family, first = ("gossip", 1) if gossip else ("collective", 0)
        for failure in failures:
            if failure.kind not in ("slow", "kill"):
                raise UsageError(f"--fail: {failure.kind} needs a master-worker algorithm; {algorithm!r} "
                                 f"({family} family) takes slow:FACTOR or kill")
            if not first <= failure.rank < size:
                raise UsageError(f"--fail: rank {failure.rank} is not one of ranks {first}..{size - 1}"
                                 + (" (rank 0 writes the metrics: it may not fail)" if gossip else ""))
        return
    for failure in failures:
        if failure.rank not in workers:
            raise UsageError(f"--fail: rank {failure.rank} is not a worker (workers are ranks "
                             f"{workers[0]}..{workers[-1]}); only workers may fail")


class Departed(Exception):
    """This rank left the run on purpose (``--fail RANK:exit@STEP``): its process ends now, status 0."""


class Injector:
    """This rank's failure (or None): :meth:`after_step` makes it happen at its step."""

    def __init__(self, failure, rank: int):
        self.failure, self.rank = failure, rank
        self.slow_extra = 0.0  # once a slow failure began: the extra time per step, as a factor

    @property
    def leaves(self) -> bool:
        """True when this rank is to exit or be killed (it never takes part in the end of the run)."""
        return self.failure is not None and self.failure.kind in GONE

    def after_step(self, trainer, step: int, began: float) -> None:
        """Called after local step ``step`` (which began at ``began``); may end this rank's run."""
        if self.slow_extra:
            slow_down(trainer.dist, (time.perf_counter() - began) * self.slow_extra)
        if self.failure is not None and step == self.failure.step:
            self.happen(trainer)

    def at_end(self, trainer) -> None:
        """Training ended before the failure's step: an exit or kill happens now."""
        if self.leaves:
            self.happen(trainer)

    def happen(self, trainer) -> None:
        failure = self.failure
        note = f"rank {self.rank} (pid {os.getpid()}): --fail {failure.rank}:{failure.kind}@{failure.step}"
        if failure.kind == "slow":
            self.slow_extra = failure.factor - 1
        elif failure.kind == "silent":
            trainer.silence()
        elif failure.kind == "exit":
            trainer.dist.finish()  # its servers see it leave
            trainer.roles.depart(trainer.harness)
            sys.stderr.write(f"mpisgd: {note}: leaves the run and exits\n")
            raise Departed(note)
        else:
            sys.stderr.write(f"mpisgd: {note}: kills itself with SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
