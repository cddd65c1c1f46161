"""Sequential twins of AsyVRSC: compositional SVRG (the estimator of :mod:`.estimator`) and plain SCGD.

Both return a :class:`Run`: the last iterate and a history of :class:`Record`
(epoch, step, f - f*, wall time in seconds since the start, not counting the
gap evaluations), so benchmarks can put them next to the asynchronous runs.

- :func:`compositional_svrg`: epochs of K inner steps (§9.2); x~ <- the last
  inner iterate. One record at the start (epoch 0) and one after each epoch.
- :func:`scgd`: basic SCGD of Wang, Fang and Liu (Math. Program. 2017):
  ``y <- (1 - beta_k) y + beta_k G_{j_k}(x_k)``, ``x <- x - alpha_k dG_{j_k}(x_k)^T grad F_{i_k}(y)``,
  with ``alpha_k = alpha / (1 + k/k0)`` and ``beta_k = min(1, beta / (1 + k/k0)^(2/3))``
  (the paper's exponents for strongly convex f: alpha ~ 1/k, beta ~ k^(-2/3);
  the constants are ours), y_0 = G(x_0); it draws j_k, i_k from the same
  :class:`~.estimator.Sampler` (A = 1, its batch unused). Its records' epoch is steps / m.
"""

import time
from dataclasses import dataclass, field, replace
from typing import List, Optional

import numpy as np

from ..errors import UsageError
from .estimator import Sampler, estimate, snapshot, update


@dataclass(frozen=True)
class Schedule:
    """Compositional SVRG hyperparameters: ``eta`` (step), ``K`` (inner steps per epoch), ``A`` (mini-batch), ``epochs``."""

    eta: float
    K: int
    A: int = 8
    epochs: int = 30

    @classmethod
    def for_problem(cls, problem, **overrides) -> "Schedule":
        """The problem's tuned defaults (``problem.schedule``; K defaults to 2m), any field overridden."""
        base = dict(problem.schedule)
        base["K"] = base.get("K") or 2 * problem.m
        fields = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(fields) - {"eta", "K", "A", "epochs"}
        if unknown:
            raise UsageError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        schedule = replace(cls(base["eta"], int(base["K"]), int(base.get("A", 8))), **fields)
        schedule.check()
        return schedule

    def check(self):
        if not (self.eta > 0 and self.K >= 1 and self.A >= 1 and self.epochs >= 0):
            raise UsageError(f"schedule needs eta > 0, K >= 1, A >= 1, epochs >= 0, got {self}")


@dataclass(frozen=True)
class Record:
    """One point of a history: ``epoch`` (float), ``step`` (inner steps so far), ``gap`` (f - f*), ``time_s``."""

    epoch: float
    step: int
    gap: float
    time_s: float


@dataclass
class Run:
    """A finished run: the last iterate ``x`` and its ``history``."""

    x: np.ndarray
    history: List[Record] = field(default_factory=list)

    def gaps(self) -> np.ndarray:
        return np.array([r.gap for r in self.history])


class _Clock:
    """Wall time that does not count the gap evaluations."""

    def __init__(self):
        self.start, self.paused = time.perf_counter(), 0.0

    def record(self, run, problem, x, epoch, step):
        t0 = time.perf_counter()
        run.history.append(Record(float(epoch), int(step), problem.gap(x), t0 - self.start - self.paused))
        self.paused += time.perf_counter() - t0


def compositional_svrg(problem, schedule: Optional[Schedule] = None, seed: int = 0, x0=None, **overrides) -> Run:
    """Compositional SVRG (§9.2) from ``x0`` (default ``problem.x0``) with worker 0's sample stream."""
    schedule = schedule or Schedule.for_problem(problem, **overrides)
    schedule.check()
    x = np.array(problem.x0 if x0 is None else x0, dtype=np.float64, copy=True)
    sampler = Sampler(problem.m, problem.n, schedule.A, seed, worker=0)
    run, clock = Run(x), _Clock()
    clock.record(run, problem, x, 0, 0)
    for epoch in range(1, schedule.epochs + 1):
        snap = snapshot(problem, x)
        for _ in range(schedule.K):
            update(x, estimate(problem, snap, x, sampler.draw()), schedule.eta)
        clock.record(run, problem, x, epoch, epoch * schedule.K)
    return run


def scgd(problem, alpha: float, beta: float = 1.0, k0: float = 100.0, steps: int = 10000, record_every: int = 1000,
         seed: int = 0, x0=None) -> Run:
    """Basic SCGD (Wang, Fang, Liu 2017) for ``steps`` steps, recording every ``record_every`` steps."""
    if not (alpha > 0 and 0 < beta and k0 > 0 and steps >= 0 and record_every >= 1):
        raise UsageError("scgd needs alpha > 0, beta > 0, k0 > 0, steps >= 0, record_every >= 1")
    x = np.array(problem.x0 if x0 is None else x0, dtype=np.float64, copy=True)
    y = problem.inner(x)
    sampler = Sampler(problem.m, problem.n, 1, seed, worker=0)
    run, clock = Run(x), _Clock()
    clock.record(run, problem, x, 0, 0)
    for k in range(steps):
        decay = 1.0 + k / k0
        sample = sampler.draw()
        b = min(1.0, beta / decay ** (2.0 / 3.0))
        y = (1.0 - b) * y + b * problem.inner_sum(x, sample.j)
        update(x, problem.jacobian_t_sum(x, sample.j, problem.outer_grad_sum(y, sample.i)), alpha / decay)
        if (k + 1) % record_every == 0:
            clock.record(run, problem, x, (k + 1) / problem.m, k + 1)
    return run
