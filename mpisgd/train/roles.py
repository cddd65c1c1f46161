"""Who does what in a training run: every rank trains, or master-worker servers and workers.

For the master-worker algorithms (:mod:`mpisgd.masterworker`) the first
``--servers`` ranks serve: they hold no data, call ``algorithm.serve()``
instead of training and return when every worker has left or is lost. The
training data is partitioned over the p workers only, and the steps of an
epoch come from p. Workers train and ``finish()`` (they leave).

The end of a master-worker run must work with a worker gone (``--fail``
``exit`` or ``kill``, :mod:`.failures`): a collective over all ranks would
never return. So the ranks still there call the roll
(:func:`~mpisgd.comm.rollcall.roll_call`: rank 0, a server, waits for each
rank's PRESENT, a departed rank's DEPARTED or the MPI library's report of
its death) and the end-of-run collectives (the final model, the evaluation
all-reduce, the statistics all-gather) run on the communicator of the ranks
present. The final model, the center assembled from the servers' slices,
is broadcast to every rank present, so every rank evaluates the same model
(a silenced worker too). The summary adds the servers' reports: who left,
who was lost, why and when, and what the algorithm adds (e.g. delays or
weights).

The gossip family goes on without a killed rank (:mod:`mpisgd.gossip.base`,
``algorithm.survivors``): :class:`SurvivorsEnd` runs the end of the run, and
the mid-run evaluations of the synchronous gossip variants, among the ranks
the algorithm found alive, and the summary names the lost ones. The other
algorithms (the collective family) cannot go on: under a launch that keeps
the job alive after a rank's death (``MPIR_CVAR_NO_COLLECTIVE_FINALIZE`` set,
docs/failures.md) a :class:`~mpisgd.comm.failed.FailureWatch` names the dead
rank and aborts the job within about a second.
"""

import math
import os

import numpy as np

from ..algorithm import get_algorithm
from ..comm import CommStats
from ..comm.failed import FailureDetector, FailureWatch
from ..comm.mpi import MPI
from ..comm.rollcall import among, announce_departure, roll_call
from ..errors import UsageError
from ..gossip.base import GossipAlgorithm
from ..masterworker.base import MasterWorkerAlgorithm
from .evaluate import test_rows
from .failures import Injector, check_failures, parse_failures
from .partition import partition

GENERIC = {"steps", *CommStats().as_dict()}  # statistics every algorithm has (not a server's report)


class Roles:
    """This rank's role, the data layout and its injected failure; UsageError for a bad ``--servers``/``--fail``."""

    def __init__(self, config, size: int, rank: int):
        cls = get_algorithm(config.algorithm)
        self.size, self.rank, self.servers = size, rank, 0
        if issubclass(cls, MasterWorkerAlgorithm):
            self.servers = config.algorithm_options.get("servers", cls.options["servers"].default)
            if self.servers >= size:
                raise UsageError(f"servers={self.servers} leaves no worker rank among the {size} ranks; "
                                 "start more ranks or fewer servers")
        self.workers = list(range(self.servers, size)) if self.servers else []
        self.gossip, self.algorithm = issubclass(cls, GossipAlgorithm), config.algorithm
        failures = parse_failures(config.fail)
        check_failures(failures, self.workers, config.algorithm, size=size, gossip=self.gossip)
        self.injector = Injector(next((f for f in failures if f.rank == rank), None), rank)

    @property
    def master_worker(self) -> bool:
        return self.servers > 0

    @property
    def serves(self) -> bool:
        """This rank is a server: no data, no training, ``serve()``."""
        return self.rank < self.servers

    @property
    def trainers(self) -> int:
        """The ranks that train (all, or the p workers): the data is split over them."""
        return self.size - self.servers

    def shard(self, labels, spec: str, seed: int) -> np.ndarray:
        """This rank's training indices (none on a server)."""
        if self.serves:
            return np.zeros(0, dtype=np.int64)
        return partition(labels, self.trainers, spec, seed)[self.rank - self.servers]

    def start_fields(self, harness) -> dict:
        """For the ``start`` record: the servers, and each rank's process id (a launcher that reports
        a dead process by its pid names a rank through this table)."""
        servers = {"servers": self.servers} if self.master_worker else {}
        return {**servers, "pids": harness.allgather_object(os.getpid())}

    def depart(self, harness) -> None:
        """This worker leaves the run early on purpose (its algorithm has finished)."""
        announce_departure(harness)

    def ending(self, harness):
        if self.master_worker:
            return MasterWorkerEnd(self, harness)
        if self.gossip:
            return SurvivorsEnd(harness)
        watch = None
        if os.environ.get("MPIR_CVAR_NO_COLLECTIVE_FINALIZE") and harness.thread_level == MPI.THREAD_MULTIPLE:
            watch = FailureWatch(harness, f"rank {{rank}} was lost (reported by the MPI library); {self.algorithm} "
                                          "cannot go on without it: resume from the last checkpoint with --resume")
        return PeersEnd(harness, watch)


class PeersEnd:
    """Every rank trains and every rank is there at the end: the end-of-run collectives use ``harness``;
    ``watch``: the FailureWatch that ends the job when a rank dies (stopped by :meth:`close`)."""

    def __init__(self, harness, watch=None):
        self.comm, self.watch = harness, watch

    def attach(self, trainer) -> None:
        pass

    def after_finish(self, trainer) -> None:
        pass

    def summary(self, stats: list, steps_per_epoch: int) -> dict:
        return {}

    def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()


class SurvivorsEnd(PeersEnd):
    """The end of a gossip run among the ranks its algorithm found alive; the summary names the lost."""

    def __init__(self, harness):
        super().__init__(harness)
        self.harness, self.trainer, self.survivors = harness, None, None

    def attach(self, trainer) -> None:
        """Follow the algorithm's survivors: each shrink also shrinks the evaluation's communicator."""
        self.trainer, self.survivors = trainer, trainer.dist.algorithm.survivors
        self.survivors.followers.append(self.follow)

    def follow(self, members: list) -> None:
        """Inside a shrink (collective among ``members``): the harness over them; the test rows of a
        synchronous run's evaluations split over them."""
        old, self.comm = self.comm, among(self.harness, members, stats=self.harness.stats)
        if old is not self.harness:
            old.free()
        evaluate = self.trainer.evaluate
        rows = test_rows(len(evaluate.all_y), self.trainer.asynchronous, self.comm.rank, self.comm.size)
        evaluate.harness, evaluate.x, evaluate.y = self.comm, evaluate.all_x[rows], evaluate.all_y[rows]

    def summary(self, stats: list, steps_per_epoch: int) -> dict:
        return self.survivors.report()

    def close(self) -> None:
        if self.comm is not self.harness:
            self.comm.free()
        super().close()


class MasterWorkerEnd:
    """The end of a master-worker run: roll call, the final model on every rank present, the servers' reports."""

    def __init__(self, roles, harness):
        self.roles, self.harness = roles, harness
        self.comm, self.roll = None, None

    def attach(self, trainer) -> None:
        pass

    def after_finish(self, trainer) -> None:
        """After ``serve()`` or ``finish()``: the ranks present, their communicator, the final model."""
        algorithm = trainer.dist.algorithm
        self.roll = roll_call(self.harness, timeout=algorithm.timeout, detector=FailureDetector(self.harness))
        self.comm = self.roll.comm
        host = algorithm.model_to_host()
        for server in range(self.roles.servers):  # servers are ranks 0..servers-1 here too: never missing
            part = host[algorithm.slice_of(server)]
            if self.comm.rank == server:
                part[...] = algorithm.final_slice()
            self.comm.bcast(part, root=server)
        algorithm.host_to_model()
        trainer.evaluate.harness = self.comm

    def summary(self, stats: list, steps_per_epoch: int) -> dict:
        """The summary's master-worker fields; ``stats``: the statistics of the ranks present, in rank order."""
        present, servers = self.roll.present, self.roles.servers
        worker_steps = [s["steps"] for rank, s in zip(present, stats) if rank >= servers]
        steps = max(worker_steps, default=0)
        reports = [{"rank": rank, **{k: v for k, v in s.items() if k not in GENERIC}}
                   for rank, s in zip(present, stats) if rank < servers]
        lost, lost_at = {}, {}
        for report in reports:
            lost.update(report.get("lost", {}))
            lost_at.update(report.get("lost_at_s", {}))
        return {"servers": servers, "workers": len(self.roles.workers), "steps": steps,
                "epochs": math.ceil(steps / steps_per_epoch), **self.roll.report(),
                "lost": dict(sorted(lost.items())), "lost_at_s": dict(sorted(lost_at.items())),
                "server_reports": reports}

    def close(self) -> None:
        if self.comm is not None:
            self.comm.free()
