"""AsyVRSC-Distributed: asynchronous variance-reduced compositional SGD, one master and p workers [reconstructed].

Shen, Xu, Liu, Guo, Ling, arXiv:1811.06396 (ALGORITHMS.md §9.3; only the
abstract was readable, the MPI pattern below is **[reconstructed]**; the
estimator itself is the one of :mod:`.estimator`). Rank 0 is the master
(``servers`` must be 1), ranks 1..p are workers 0..p-1.

Epoch s (the master's x at the epoch start is the snapshot x~):

1. every worker holds x~ (the broadcast at construction, then the REPLY
   that closed the previous epoch) and the workers compute the snapshot
   over their shards of [m] and [n] (:func:`~.estimator.shard`), summed by
   an all-reduce over the workers' communicator (three passes: G~, grad F(G~),
   grad f(x~));
2. inner loop: a worker draws its sample (``Sampler(..., worker=w)``),
   computes v_k = :func:`~.estimator.estimate` at its (possibly stale) x and
   sends it as a REQUEST with the version of that x; the master applies the
   updates in arrival order (x <- x - eta v_k), records each one's delay
   (master updates since the x the worker used was sent) and REPLIES with
   the current x and its version. Each worker has one update in flight, so
   a delay is at most p - 1;
3. after K updates in the epoch (over all workers) the master evaluates
   f - f*, decides whether to stop (``epochs``, ``stop_gap``, ``time_limit``:
   checked at epoch ends only, so that no worker enters a snapshot alone)
   and answers with the new epoch number; the updates still in flight were
   computed on the old snapshot and are dropped (counted in ``dropped``),
   their senders get x~ too. Once stopping, every reply carries the
   service's STOP: the workers leave and get the final x in the FAREWELL.

With one worker the master applies exactly the sequential compositional
SVRG's updates on worker 0's sample stream: the run equals
:func:`~.sequential.compositional_svrg` bit for bit.

Example (numpy; ``mpiexec -n 3 python -m mpi4py x.py``: the master and two workers; any n >= 2)::

    import numpy
    from mpi4py import MPI
    from mpisgd.masterworker import AsyVRSCDistributed
    from mpisgd.masterworker.problems import get_problem

    problem = get_problem("portfolio:synthetic:N=10,n=200,seed=0")
    x = numpy.zeros(problem.dim)
    solver = AsyVRSCDistributed(x, problem, comm=MPI.COMM_WORLD, epochs=12, seed=1)
    history = solver.run()          # every rank; x now holds the final iterate on every rank
    if MPI.COMM_WORLD.rank == 0:
        print("relative gap", history[-1].gap / history[0].gap, "max delay", max(solver.delays))
    solver.close()
"""

import time

import numpy as np

from ..algorithm import Option, non_negative, positive, register
from ..comm.backoff import Backoff
from ..errors import UsageError
from .base import MasterWorkerAlgorithm
from .estimator import Sampler, estimate, shard, snapshot, update
from .sequential import Record, Schedule


@register
class AsyVRSCDistributed(MasterWorkerAlgorithm):
    """The master-worker AsyVRSC solver on a composition problem (see the module docstring); ``run()`` -> history."""

    name = "asyvrsc-distributed"
    summary = "asynchronous variance-reduced compositional SGD, master and workers [reconstructed]"
    composition = True  # a solver of composition problems: run by `mpisgd optimize`, not by `train`
    header_size = 2  # (version of x, epoch) both ways
    options = {
        **MasterWorkerAlgorithm.options,
        "eta": Option(0.0, "step size (eta); 0: the problem's tuned default", non_negative),
        "inner_steps": Option(0, "master updates per epoch over all workers (K); 0: the problem's default",
                              non_negative),
        "batch": Option(0, "inner mini-batch size (A); 0: the problem's default", non_negative),
        "epochs": Option(30, "epochs at most", non_negative),
        "seed": Option(0, "seed of the sample streams (worker w draws from default_rng([seed, w]))", non_negative),
        "stop_gap": Option(0.0, "stop at the first epoch end with (f - f*) / (f(x0) - f*) <= STOP_GAP; 0: never",
                           non_negative),
        "max_delay": Option(0, "the largest delay an applied update may have (tau): the master holds a fast "
                               "worker's update while applying it would push another's past it; 0: p - 1, the least",
                            non_negative),
        "time_limit": Option(0.0, "stop at the first epoch end after this many seconds; 0: no limit", non_negative),
    }

    def __init__(self, x, problem, *, comm=None, init="broadcast", **options):
        """``x``: the flat float64 vector (numpy, torch or cupy), the start; it holds the final iterate after
        :meth:`run` on every rank. ``problem``: a composition problem (:mod:`.problems`)."""
        super().__init__(x, comm=comm, init=init, **options)
        dtype = self.flat.backend.numpy_dtype(self.flat.params)
        self.comm.check_all(self.servers == 1, f"{self.name} has one master: servers must be 1, got "
                                                f"{self.servers}", UsageError)
        self.comm.check_all(dtype == np.float64, f"{self.name} needs a float64 vector (the problems' oracles "
                                                  f"are float64), got {dtype}", UsageError)
        self.comm.check_all(self.flat.numel == problem.dim, f"x has {self.flat.numel} values but problem "
                                                            f"{problem.name} has dim {problem.dim}", UsageError)
        self.comm.check_agreement({"problem": repr(problem)}, what="composition problem")
        self.problem = problem
        self.schedule = Schedule.for_problem(problem, eta=self.eta or None, K=self.inner_steps or None,
                                             A=self.batch or None, epochs=self.epochs)
        self.x = self.model_to_host().copy()  # the working float64 iterate (the master's is the one applied)
        self.version, self.epoch, self.count = 0, 1, 0  # updates applied, current epoch, its updates so far
        self.delays, self.dropped, self.history = [], 0, []
        self.tau = self.max_delay or self.workers - 1  # the delay bound
        self.comm.check_all(self.tau >= self.workers - 1, f"max_delay={self.max_delay} is below p - 1 = "
                            f"{self.workers - 1}: the workers' first updates of an epoch already reach it", UsageError)
        self.base = dict.fromkeys(self.worker_ranks, 0)  # the version of the x each worker computes on
        self.held = []  # updates waiting for the delay bound (in arrival order)
        self.on_record = None  # called with each Record on the master, outside the timed work (metrics, progress)
        self.mutate_ignore_updates = False  # test hook: the master drops every update (the oracle must fail)

    # -- the master ------------------------------------------------------------
    def _record(self, epoch) -> float:
        """Append the gap at the master's x to the history; the evaluation (and ``on_record``) is left out of the
        wall time."""
        started = time.perf_counter()
        gap = self.problem.gap(self.x)
        self.history.append(Record(float(epoch), self.version, gap, started - self.start - self.paused))
        if self.on_record is not None:
            self.on_record(self.history[-1])
        self.paused += time.perf_counter() - started
        return gap

    def _should_stop(self, gap: float) -> bool:
        first = self.history[0].gap
        return (self.epoch > self.schedule.epochs
                or (self.stop_gap > 0 and gap <= self.stop_gap * first)
                or (self.time_limit > 0 and self.history[-1].time_s >= self.time_limit))

    def handle(self, message) -> None:
        """One worker's update: held until it can be applied within the delay bound, then applied and answered."""
        if int(message.header[1]) == self.epoch and not self.endpoint.stopping:
            self.held.append(message)
            self._apply_held()
        else:  # computed on an earlier snapshot (or the run is over): dropped, answered with the epoch's x~
            self.dropped += 1
            self.endpoint.reply(message.source, self.x, [self.version, self.epoch])

    def _within_bound(self, worker: int) -> bool:
        """Whether applying ``worker``'s update now leaves every other worker's next update a delay <= tau.

        Every other worker has one update coming, computed on the x of version ``base``; applied in the
        order of their bases after this one, the i-th (from 1) would have the delay version + i - base_i."""
        others = sorted(base for rank, base in self.base.items() if rank != worker)
        return all(self.version + i - base <= self.tau for i, base in enumerate(others, start=1))

    def _apply_held(self) -> None:
        """Apply the held updates in arrival order, each as soon as the delay bound allows; answer each."""
        applied = True
        while applied and self.held:
            applied = False
            for message in self.held:
                if self._within_bound(message.source):
                    self.held.remove(message)
                    self._apply(message)
                    applied = True
                    break

    def _apply(self, message) -> None:
        source = message.source
        self.delays.append(self.version - int(message.header[0]))
        if not self.mutate_ignore_updates:
            update(self.x, message.data, self.schedule.eta)
        self.version += 1
        self.count += 1
        if self.count == self.schedule.K:
            self._end_epoch()
        self.base[source] = self.version
        self.endpoint.reply(source, self.x, [self.version, self.epoch])

    def _end_epoch(self) -> None:
        gap = self._record(self.epoch)
        self.epoch, self.count = self.epoch + 1, 0
        if self._should_stop(gap):
            self.endpoint.stop()
        self.base = dict.fromkeys(self.worker_ranks, self.version)  # every worker starts the epoch from x~
        for message in self.held:  # computed on the old snapshot: dropped
            self.dropped += 1
            self.endpoint.reply(message.source, self.x, [self.version, self.epoch])
        self.held = []

    def farewell(self, worker: int):
        return self.x

    # -- a worker --------------------------------------------------------------
    def _reduce(self, partial):
        """The SUM of ``partial`` over the workers' shards (non-blocking all-reduce, waited for with a back-off)."""
        total = np.array(partial, dtype=np.float64)
        request = self.group.iallreduce(total)
        backoff = Backoff(timeout=self.timeout, what="the snapshot's all-reduce over the workers")
        with self.comm.stats.blocked():
            while not request.test():
                backoff.idle()
        return total

    def snapshot_at(self, x):
        """The snapshot at ``x`` from this worker's shards, summed over the workers (collective on the workers)."""
        problem, p, w = self.problem, self.workers, self.worker
        return snapshot(problem, x, shard(problem.m, p, w), shard(problem.n, p, w), reduce=self._reduce)

    def _work(self) -> None:
        problem = self.problem
        sampler = Sampler(problem.m, problem.n, self.schedule.A, self.seed, worker=self.worker)
        x, version = self.x, 0
        while not self.endpoint.stopped:
            snap = self.snapshot_at(x)
            epoch = self.epoch
            while self.epoch == epoch and not self.endpoint.stopped:
                v = estimate(problem, snap, x, sampler.draw())
                reply = self.endpoint.request(0, v, [version, epoch])
                x, version, self.epoch = reply.data, int(reply.header[0]), int(reply.header[1])
                self.steps += 1

    def departed(self, farewells: dict) -> None:
        if 0 in farewells:
            self.x[:] = farewells[0].data

    # -- running ---------------------------------------------------------------
    def run(self) -> list:
        """Solve; returns the history (``Record`` per epoch end, epoch 0 first) on every rank, leaves the
        final x in the caller's vector on every rank; ``delays`` holds every applied update's delay."""
        if self.is_server:
            self.start, self.paused = time.perf_counter(), 0.0
            self._record(0)
            if self.schedule.epochs == 0:
                self.endpoint.stop()
            self.serve()
        else:
            self._work()
        self.finish()
        self.host[:] = self.x
        self.host_to_model()
        self.history, self.delays, self.dropped = self.comm.bcast_object(
            (self.history, self.delays, self.dropped) if self.is_server else None, root=0)
        return self.history

    def statistics(self) -> dict:
        stats = super().statistics()
        stats.update({"updates": self.version if self.is_server else self.steps, "dropped": self.dropped})
        return stats
