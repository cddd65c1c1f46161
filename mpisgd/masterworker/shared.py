"""AsyVRSC-Shared: asynchronous variance-reduced compositional gradient on one node's shared memory [reconstructed].

Shen, Xu, Liu, Guo, Ling, arXiv:1811.06396, as far as it could be read (the
abstract): ranks on one node share x and update it without locks, Hogwild
style. The estimator is the ONE reconstruction of :mod:`.estimator`; how the
ranks share the work (ALGORITHMS.md §9.3) is reconstructed too.

Every rank is a worker; there is no master, so this subclasses
:class:`~mpisgd.algorithm.Algorithm` (options, agreement, registry) and not
:class:`~.base.MasterWorkerAlgorithm`, whose server roles and messaging a
shared-memory run does not use. x lives in a
:class:`~mpisgd.comm.window.SharedWindow` (one copy per node). Epoch s:

1. at a fence (every update done and visible), every rank reads the same x,
   the snapshot x~; the snapshot quantities (G~, grad F(G~), grad f(x~)) are
   computed over the ranks' shards of [m] and [n] and summed with an all-reduce;
2. rank r takes its share of the K inner steps (``shard(K, p, r)``); each
   step reads x (raw: a plain copy that may mix old and new elements), draws
   its indices from its own :class:`~.estimator.Sampler` (``worker=r``),
   computes v_k and adds ``-eta v_k`` to the shared x: raw (``atomic=False``,
   racy: a concurrent update of an element may be lost) or with MPI's
   per-element atomic ``Accumulate`` (``atomic=True``, reads then use
   ``Get_accumulate``). x + (-(eta v)) equals :func:`~.estimator.update`'s
   x - eta v exactly, so one rank reproduces the sequential twin bit for bit;
3. the delay of each update is the number of updates by any rank counted on
   the shared counter (``Fetch_and_op``) between this rank's read and its
   write, an upper bound: an update that lands during the read is counted.

Example (``mpiexec -n 2 python -m mpi4py x.py``)::

    from mpi4py import MPI
    from mpisgd.masterworker.problems import get_problem
    from mpisgd.masterworker.shared import AsyVRSCShared

    problem = get_problem("portfolio:synthetic:N=20,n=400")
    x = problem.x0
    solver = AsyVRSCShared(x, problem, comm=MPI.COMM_WORLD, eta=2e-3, epochs=10)
    history = solver.run()                  # the same list of Records on every rank
    print(solver.comm.rank, history[-1].gap / history[0].gap, x[:3])   # x: the final iterate
    solver.close()
"""

import time

import numpy as np

from ..algorithm import Algorithm, Option, non_negative, register
from ..comm.window import SharedWindow, wait_polled
from ..errors import UsageError
from .estimator import Sampler, estimate, shard, snapshot
from .sequential import Record, Schedule


@register
class AsyVRSCShared(Algorithm):
    """AsyVRSC on shared memory: every rank of one node updates the shared x without locks."""

    name = "asyvrsc-shared"
    summary = "asynchronous variance-reduced compositional gradient, Hogwild on a shared-memory window [reconstructed]"
    asynchronous = True
    composition = True  # a solver of composition problems: run by `mpisgd optimize`, not by `train`
    options = {
        "eta": Option(0.0, "step size eta; 0: the problem's tuned default", non_negative),
        "inner_steps": Option(0, "K, inner steps per epoch summed over the ranks; 0: the problem's default",
                              non_negative),
        "batch": Option(0, "A, the inner mini-batch size; 0: the problem's default", non_negative),
        "epochs": Option(30, "epochs (snapshots)", non_negative),
        "seed": Option(0, "seed of the sample streams (rank r draws from default_rng([seed, r]))"),
        "atomic": Option(False, "per-element atomic updates and reads (MPI Accumulate) instead of raw racy ones"),
        "stop_gap": Option(0.0, "stop after the first epoch whose relative gap (f - f*)/(f(x0) - f*) is at most "
                                "this; 0: run every epoch", non_negative),
        "time_limit": Option(0.0, "stop at the first epoch end after this many seconds; 0: no limit", non_negative),
    }

    def __init__(self, x, problem, *, comm=None, init="broadcast", **options):
        super().__init__(x, comm=comm, init=init, **options)
        self.problem = problem
        self.comm.check_agreement({"problem": getattr(problem, "name", type(problem).__name__),
                                   "sizes": [problem.dim, problem.m, problem.n]}, what="problem")
        try:
            self.schedule = Schedule.for_problem(problem, eta=self.eta or None, K=self.inner_steps or None,
                                                 A=self.batch or None, epochs=self.epochs)
            problem_text = "" if self.flat.numel == problem.dim else \
                f"x has {self.flat.numel} elements, the problem {problem.dim}"
        except UsageError as error:
            problem_text = str(error)
        self.comm.check_all(not problem_text, problem_text, UsageError)
        self.host = self.flat.backend.host_buffer(self.flat.params)
        self.flat.backend.to_host(self.flat.params, self.host)
        try:
            self.window = SharedWindow(self.comm, problem.dim, initial=self.host, what=f"{self.name} (x in shared memory)")
            self.counter = SharedWindow(self.comm, 1, np.int64, what=self.name)  # updates applied so far
        except UsageError:
            self.close()  # every rank raised it (collective check): free what exists
            raise
        rank, size = self.comm.rank, self.comm.size
        self.sampler = Sampler(problem.m, problem.n, self.schedule.A, self.seed, worker=rank)
        self.inner_shard = shard(problem.m, size, rank)
        self.outer_shard = shard(problem.n, size, rank)
        self.my_steps = _length(shard(self.schedule.K, size, rank))
        self.history, self.delays, self.dropped = [], [], 0  # dropped: always 0 (no update is ever discarded)
        self.delay_counts = []  # per epoch: entry d counts the updates (all ranks) with delay d
        self.on_record = None  # called with each Record on rank 0, outside the timed work (metrics, progress)

    # -- one epoch -------------------------------------------------------------
    def _sum(self, partial: np.ndarray) -> np.ndarray:
        """A partial sum over this rank's shard -> the sum over all shards (all-reduce, in place)."""
        self.comm.allreduce(partial)
        return partial

    def epoch(self) -> np.ndarray:
        """One epoch from a fence to the next (every rank); returns this rank's update delays."""
        problem, window, counter, atomic = self.problem, self.window, self.counter, self.atomic
        snap = snapshot(problem, window.read(), self.inner_shard, self.outer_shard, reduce=self._sum)
        x, eta = np.empty(problem.dim), self.schedule.eta
        delays = np.empty(self.my_steps, dtype=np.int64)
        for k in range(self.my_steps):
            seen = counter.load(atomic=atomic)
            window.read(x, atomic=atomic)
            step = estimate(problem, snap, x, self.sampler.draw())
            step *= -eta  # x + (-eta v) == x - eta v (estimator.update), bit for bit
            window.add(step, atomic=atomic)
            delays[k] = counter.fetch_add(1) - seen
        self.steps += self.my_steps
        window.fence()
        return delays

    # -- the run ---------------------------------------------------------------
    def run(self) -> list:
        """``epochs`` epochs (or until ``stop_gap`` or ``time_limit``); the history, the same on every rank.

        One :class:`~.sequential.Record` per epoch end (and one for the start,
        epoch 0): ``epoch``, ``step`` (inner steps so far, all ranks), ``gap``
        (f - f*), ``time_s`` (wall time since the start, the slowest rank's,
        gap evaluations not counted). ``delays`` then lists every update's
        delay (epoch by epoch, in increasing order within an epoch) and
        ``delay_counts`` each epoch's histogram. On return the caller's ``x``
        holds the final iterate (the solvers' interface, as
        :class:`~.asyvrsc.AsyVRSCDistributed`).
        """
        clock, history = _Clock(), self.history
        self._record(history, 0, np.zeros(0, dtype=np.int64), clock)
        for epoch in range(1, self.schedule.epochs + 1):
            delays = self.epoch()
            self._record(history, epoch, delays, clock)
            last = history[-1]
            if (self.stop_gap > 0 and last.gap <= self.stop_gap * history[0].gap) or \
                    (self.time_limit > 0 and last.time_s >= self.time_limit):
                break
        np.copyto(self.host, self.window.array)
        self.flat.backend.from_host(self.host, self.flat.params)
        return history

    def _record(self, history: list, epoch: int, delays: np.ndarray, clock) -> None:
        """Append the record of the fence just passed (collective; rank 0 evaluates the gap)."""
        elapsed = clock.pause()
        shared = self.comm.allgather_object((elapsed, np.bincount(delays).tolist()))  # the ranks are in step
        gap = np.array([self.problem.gap(self.window.array) if self.comm.rank == 0 else 0.0])
        wait_polled(self.comm.mpi.Ibcast(gap, root=0))  # the others sleep while rank 0 evaluates
        gap = float(gap[0])
        counts = np.zeros(max(len(c) for _, c in shared), dtype=np.int64)
        for _, part in shared:
            counts[:len(part)] += np.asarray(part, dtype=np.int64)
        if epoch > 0:
            self.delay_counts.append(counts.tolist())
            self.delays.extend(np.repeat(np.arange(len(counts)), counts).tolist())
        steps = (history[-1].step + int(counts.sum())) if history else 0
        history.append(Record(float(epoch), steps, gap, max(t for t, _ in shared)))
        if self.on_record is not None and self.comm.rank == 0:
            self.on_record(history[-1])  # metrics, progress: outside the timed work
        clock.resume()

    def statistics(self) -> dict:
        return {**super().statistics(), "atomic": self.atomic, "inner_steps_per_epoch": self.my_steps}

    def close(self) -> None:
        """Free the windows (collective), then the communicator."""
        for window in (getattr(self, "window", None), getattr(self, "counter", None)):
            if window is not None:
                window.free()
        super().close()


def _length(part: slice) -> int:
    return part.stop - part.start


class _Clock:
    """Wall time since construction, minus the paused intervals (the gap evaluations)."""

    def __init__(self):
        self.start, self.paused, self.since = time.perf_counter(), 0.0, None

    def pause(self) -> float:
        self.since = time.perf_counter()
        return self.since - self.start - self.paused

    def resume(self) -> None:
        self.paused += time.perf_counter() - self.since
