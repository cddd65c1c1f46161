"""What every master-worker algorithm shares: the rank roles, the service endpoint, the center's slices.

- **Roles** come from one option, ``servers``: ranks ``0 .. servers-1``
  serve (they hold the model or the center, sliced over them when there
  are several), the others are workers. ``self.is_server``,
  ``self.server_ranks``, ``self.worker_ranks``, and for a worker
  ``self.worker`` (its index among the workers, ``0 .. p-1``).
- **Messaging**: ``self.endpoint`` is a :class:`~mpisgd.comm.service.Server`
  or a :class:`~mpisgd.comm.service.Client` on this rank's
  :class:`~mpisgd.comm.Messenger` (nothing is ever dropped from its queue),
  with the ``timeout`` option as the deadline of every wait. A slow uplink
  is plugged in from outside: ``algorithm.messenger.throttle = Throttle(rate)``.
- **The role communicator** ``self.group``: the servers among themselves,
  or the workers among themselves (e.g. to compute a snapshot over the
  workers' shards with an all-reduce).
- **Running**: a server rank calls :meth:`serve` (it returns when every
  worker has left or is lost); a worker trains and calls ``finish()``
  (which leaves). :meth:`handle` is the subclass's answer to one message;
  :meth:`farewell` the payload of a server's last message to a worker
  (e.g. the final center) and :meth:`departed` what a worker does with them.
- **Slices**: :meth:`slice_of` is the part of the flat vector a server owns;
  :meth:`final_slice` is a server's part of the final model once
  :meth:`serve` returned (default: that slice of its own parameters; an
  algorithm that keeps the center elsewhere overrides it). The training
  harness assembles the slices into the model every rank evaluates.
  Mid-run, :meth:`current_slice` and :meth:`worker_steps` (None by default)
  let the harness evaluate a single server's model while it serves.
- **Recording** (tests): ``algorithm.record = []`` on a server makes it log
  every message it handles, in handling order, as an :class:`Event` (kind
  ``request``/``update``/``leave``, the worker, the message's first header
  value), plus what an algorithm logs itself with :meth:`log` (e.g. easgd-dw's
  period closings); a reference written from the paper replays that order.
  Off by default (``None``: one attribute test per message).
- **Failures** (tests, benchmarks): a worker process the MPI library reports
  dead is lost at once (:class:`~mpisgd.comm.failed.FailureDetector`);
  :meth:`silence` cuts a worker off (``self.silent``: it sends nothing any
  more and trains on alone).

Example (workers send their ranks to server 0, which sums them; ``mpiexec -n 3 python -m mpi4py x.py``)::

    import numpy
    from mpi4py import MPI
    from mpisgd.comm import tags
    from mpisgd.masterworker.base import MasterWorkerAlgorithm

    class Sum(MasterWorkerAlgorithm):
        name = "example-sum"
        def handle(self, message):
            self.flat.params += message.data
            self.endpoint.reply(message.source, self.flat.params)

    algorithm = Sum(numpy.zeros(2), comm=MPI.COMM_WORLD)
    if algorithm.is_server:
        algorithm.serve()
        print("sum", algorithm.flat.params)
    else:
        algorithm.endpoint.request(0, numpy.full(2, float(algorithm.comm.rank)))
    algorithm.finish()
    algorithm.close()
"""

from typing import NamedTuple

import numpy as np

from ..algorithm import Algorithm, Option, positive
from ..comm import Messenger, tags
from ..comm.failed import FailureDetector
from ..comm.service import Client, Server
from ..errors import UsageError

MAX_IN_FLIGHT = 1 << 20  # the service posts every message at once (workers keep one update in flight)


class Event(NamedTuple):
    """One thing a server did, as ``MasterWorkerAlgorithm.record`` logs it (in the order it happened)."""

    kind: str  # "request", "update", "leave" (a worker's message handled), or the algorithm's own (e.g. "close")
    worker: int  # the worker rank (-1: none)
    stamp: int  # the first header value the worker sent with it (-1: none), or the algorithm's own value


class MasterWorkerAlgorithm(Algorithm):
    """Base class of the master-worker family."""

    options = {
        "servers": Option(1, "the first SERVERS ranks serve (hold the model or center, sliced over them); "
                             "the other ranks are workers", positive),
        "timeout": Option(120.0, "the longest any rank waits for a peer, in seconds; a worker silent this "
                                 "long counts as lost", positive),
    }
    asynchronous = True
    header_size = 1  # the algorithm's own header values on each message
    record = None  # opt-in server log: a list to append Events to (None: nothing is recorded)

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        super().__init__(flat, comm=comm, init=init, **options)
        size, rank = self.comm.size, self.comm.rank
        self.comm.check_all(self.servers < size, f"servers={self.servers} leaves no worker rank among the "
                                                 f"{size} ranks; start more ranks or fewer servers", UsageError)
        self.server_ranks = list(range(self.servers))
        self.worker_ranks = list(range(self.servers, size))
        self.is_server = rank < self.servers
        self.worker = None if self.is_server else rank - self.servers
        self.group = self.comm.split(0 if self.is_server else 1)
        self.host = self.flat.backend.host_buffer(self.flat.params)
        self.messenger = Messenger(self.comm, dtype=self.flat.backend.numpy_dtype(self.flat.params),
                                   header_size=1 + self.header_size, max_in_flight=MAX_IN_FLIGHT, replace=False)
        if self.is_server:
            self.endpoint = Server(self.messenger, self.worker_ranks, timeout=self.timeout, farewell=self._farewell,
                                   detector=FailureDetector(self.comm))
        else:
            self.endpoint = Client(self.messenger, self.server_ranks, timeout=self.timeout)
        self.finished = False
        self.silent = False  # silence() was called: no exchange starts any more

    @property
    def workers(self) -> int:
        """p, the number of workers."""
        return len(self.worker_ranks)

    def slice_of(self, server: int) -> slice:
        """The part of the flat vector that server rank ``server`` owns (contiguous, nearly equal)."""
        bounds = np.linspace(0, self.flat.numel, self.servers + 1).round().astype(int)
        return slice(int(bounds[server]), int(bounds[server + 1]))

    def final_slice(self) -> np.ndarray:
        """A server's part of the final model (host array of ``slice_of(rank)``'s length), after :meth:`serve`."""
        return self.model_to_host()[self.slice_of(self.comm.rank)]

    def model_to_host(self) -> np.ndarray:
        self.flat.backend.to_host(self.flat.params, self.host)
        return self.host

    def host_to_model(self) -> None:
        self.flat.backend.from_host(self.host, self.flat.params)

    # -- running ---------------------------------------------------------------
    def serve(self, *, between=None) -> None:
        """A server rank's whole run: answer workers until every one has left or is lost.

        ``between()`` (optional; True if it did something) runs after each poll, beside :meth:`idle`:
        the caller's own work while serving, e.g. the training harness's mid-run evaluation of the
        center. Its time is the server's: no message is answered while it runs."""
        if not self.is_server:
            raise UsageError(f"rank {self.comm.rank} is a worker; only ranks 0..{self.servers - 1} serve")
        idle = self.idle if between is None else (lambda: self.idle() | bool(between()))
        self.endpoint.serve(self.handle if self.record is None else self._recorded, idle=idle)

    def log(self, kind: str, worker: int = -1, stamp: int = -1) -> None:
        """Append an :class:`Event` to ``record`` (when recording)."""
        if self.record is not None:
            self.record.append(Event(kind, int(worker), int(stamp)))

    def _recorded(self, message) -> None:
        self.log(tags.name(message.tag), message.source, message.header[0] if len(message.header) else -1)
        self.handle(message)

    def _farewell(self, worker: int):
        self.log("leave", worker)
        return self.farewell(worker)

    def handle(self, message) -> None:
        """A server's answer to one worker message (subclasses)."""
        raise NotImplementedError

    def current_slice(self):
        """While serving: a server's part of the model as it stands now (host array of ``slice_of(rank)``'s
        length), or None when the algorithm has none to show mid-run (default)."""
        return None

    def worker_steps(self):
        """While serving: about how many local steps each worker has taken so far, as this server can tell
        from what it received (an estimate), or None when it cannot tell (default)."""
        return None

    def idle(self) -> bool:
        """Called by a serving rank after each poll (e.g. a deadline of the algorithm's); True if it acted."""
        return False

    def finish(self) -> None:
        """A worker leaves (taking what its servers still send: :meth:`serve_late`); a server has
        nothing left to do once :meth:`serve` returned."""
        super().finish()
        if not self.finished and not self.is_server:
            for message in self.endpoint.leave():
                self.serve_late(message)
            self.departed(self.endpoint.farewells)
        self.finished = True

    def silence(self) -> None:
        """This worker stops sending, for good (a failure injected for tests and benchmarks).

        Sets ``self.silent``: a subclass's worker hooks then start no exchange
        (a request would wait for an answer that cannot come) and the local
        steps go on. What would still be sent is dropped (LEAVE included), so
        the servers count this worker lost after ``timeout`` seconds."""
        if self.is_server:
            raise UsageError(f"rank {self.comm.rank} is a server; only workers can be silenced")
        self.silent = True
        self.endpoint.silence()

    def serve_late(self, message) -> None:
        """A server's message that arrives while this worker is leaving (default: discarded)."""

    def farewell(self, worker: int):
        """A server's last payload to ``worker`` (e.g. its slice of the final center; default: empty)."""
        return ()

    def departed(self, farewells: dict) -> None:
        """A worker has left; ``farewells`` maps each server that answered to its FAREWELL message."""

    def close(self) -> None:
        if not self.finished:
            self.finish()
        self.group.free()
        super().close()

    def statistics(self) -> dict:
        stats = super().statistics()
        if self.is_server:
            stats.update(self.endpoint.report())
        else:
            stats.update({"unanswered": self.endpoint.unanswered, "drained": self.endpoint.drained,
                          "silenced": self.endpoint.silent, "dropped": self.endpoint.dropped})
        return stats
