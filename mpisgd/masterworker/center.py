"""What the master-worker EASGD variants share: the center variable x~ (``center``), sliced over the servers.

EASGD (Zhang, Choromanska, LeCun, NeurIPS 2015) ties each worker's model
x^i to a center x~ by an elastic force; in the master-worker variants the
center lives on the server ranks, server ``s`` holding the slice
``slice_of(s)`` of the flat vector (one server by default). Options shared
by :mod:`mpisgd.masterworker.easgd` and :mod:`mpisgd.masterworker.weighting`:
``period`` (tau, local steps between exchanges) and ``moving_rate``
(beta; each worker moves by alpha = beta / p, p the number of workers).

- **Server**: ``self.center`` is its slice of x~ (a host array, the model's
  dtype), starting from its own initial parameters (``init="broadcast"``:
  rank 0's, which are also every worker's). :meth:`serve` returns with the
  whole center in the server's parameters (the servers gather their slices).
- **Worker**: host buffers ``read`` (x~ as last read) and ``delta`` (what an
  exchange moves); :meth:`apply_delta` subtracts ``delta`` from the model.
- **End**: each server's FAREWELL carries its slice of the center, so every
  worker ends holding the center as it was when the worker left.
- **Silent worker** (tests and failure injection): ``algorithm.silent =
  True`` makes a worker stop sending anything (no exchange, no LEAVE); its
  servers count it lost after ``timeout`` seconds and finish without it.
"""

import copy

import numpy as np

from ..algorithm import Option, fraction, positive
from ..comm.backoff import Backoff
from .base import MasterWorkerAlgorithm


class CenterVariable(MasterWorkerAlgorithm):
    """Base of the master-worker EASGD algorithms: x~ on the servers, elastic exchanges with the workers."""

    options = {
        **MasterWorkerAlgorithm.options,
        "period": Option(4, "local steps between elastic exchanges (tau)", positive),
        "moving_rate": Option(0.9, "center moving rate beta; each worker moves by alpha = beta / p "
                                   "(p workers)", fraction),
    }
    server_state = ("center",)  # what state_dict() saves on a server ...
    worker_state = ()  # ... and on a worker

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        super().__init__(flat, comm=comm, init=init, **options)
        self.alpha = self.moving_rate / self.workers  # alpha = beta / p
        host = self.model_to_host()
        self.silent = False
        self.exchanges = 0  # worker: exchanges done; server: contributions applied
        if self.is_server:
            self.center = host[self.slice_of(self.comm.rank)].copy()  # x~, this server's slice
        else:
            self.read = np.empty_like(host)  # x~ as last read from the servers
            self.delta = np.zeros_like(host)  # what this exchange moves (alpha (x^i - x~))
            self.delta_model = self.flat.backend.zeros_like(self.flat.params)  # delta, on the model's device

    # -- worker ----------------------------------------------------------------
    def apply_delta(self) -> None:
        """x^i <- x^i - delta (``delta`` is on the host)."""
        self.flat.backend.from_host(self.delta, self.delta_model)
        self.flat.params -= self.delta_model

    def finish(self) -> None:
        if self.silent and not self.is_server and not self.finished:  # silent: no LEAVE either
            backoff = Backoff(timeout=self.timeout, what="a silent worker's last sends")
            while self.messenger.pending():  # what it sent before falling silent is still delivered
                backoff.after(self.messenger.progress())
            self.finished = True
        super().finish()

    # -- server ----------------------------------------------------------------
    def serve(self, *, between=None) -> None:
        """Answer workers until every one has left or is lost; then this rank's parameters hold the whole center."""
        super().serve(between=between)
        host = self.model_to_host()
        if self.servers == 1:
            host[...] = self.center
        else:
            counts = [len(range(self.flat.numel)[self.slice_of(s)]) for s in self.server_ranks]
            self.group.mpi.Allgatherv(self.center, [host, counts])
        self.host_to_model()

    def current_slice(self) -> np.ndarray:
        return self.center

    def worker_steps(self) -> float:
        """Each contribution applied is ``period`` local steps of one worker: exchanges * tau / p."""
        return self.exchanges * self.period / self.workers

    def farewell(self, worker: int):
        return self.center

    def departed(self, farewells: dict) -> None:
        """The worker's model becomes the center (each slice as its server last held it)."""
        host = self.model_to_host()
        for server, message in farewells.items():
            host[self.slice_of(server)] = message.data
        self.host_to_model()

    # -- state -----------------------------------------------------------------
    def _state_names(self) -> tuple:
        return self.server_state if self.is_server else self.worker_state

    def state_dict(self) -> dict:
        """Options and counters, plus the server's center (and round state) or the worker's own buffers."""
        state = super().state_dict()
        state["exchanges"] = self.exchanges
        state.update({name: copy.deepcopy(getattr(self, name)) for name in self._state_names()})
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.exchanges = state["exchanges"]
        for name in self._state_names():
            value, current = state[name], getattr(self, name)
            if hasattr(current, "shape") and hasattr(value, "shape"):
                current[...] = value
            else:
                setattr(self, name, copy.deepcopy(value))

    def statistics(self) -> dict:
        return {**super().statistics(), "exchanges": self.exchanges}
