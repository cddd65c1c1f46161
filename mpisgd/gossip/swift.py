"""Swift, wait-free decentralized learning (Bornstein et al., ICLR 2023; official mpi4py code).

Every step, after backward, rank ``i`` sends its model to each neighbour
(non-blocking, through the bounded outbox: a neighbour whose previous
message is still in flight gets only the newest model later). Every
``avg_period`` steps it averages with what its neighbours sent, never
waiting for one, with the mixing weights ``w_ij`` of the topology
(``metropolis`` by default, ``swift``: the official degree negotiation, or
``uniform``; see :mod:`mpisgd.gossip.topology.mixing`):

- ``mode="standard"`` (the official code's default, ``--memory_efficient 0``):
  ``x_i <- w_ii x_i + sum_j w_ij x_j`` over every neighbour ``j``, with ``x_j``
  the newest model received from ``j`` so far -- a neighbour silent since the
  last average counts with its stored model. Memory: one model per
  neighbour. Until ``j``'s first model arrives its weight stays with ``x_i``.
- ``mode="memory-efficient"``: only the models received since the last
  average take part, ``x_i <- w_self x_i + sum_{j received} w_ij x_j`` with
  ``w_self = 1 - sum_{j received} w_ij`` (nothing stored).
- ``boost=True`` (memory-efficient only; the official ``--wb 1``, off by
  default there): the weights of the ranks heard from are scaled up by
  ``1 / wb``, ``wb = w_ii + sum_{j received} w_ij``:
  ``x_i <- (w_ii x_i + sum_{j received} w_ij x_j) / wb``. With neighbourhood-
  uniform weights ``wb = (#received + 1) / (deg + 1)``, the official formula;
  on other weights this keeps the weights summing to one.

A lost neighbour (:mod:`mpisgd.gossip.base`) is sent nothing more and its
stored model is dropped: the weights stay those of the topology, and the
lost neighbour's ``w_ij`` goes to ``w_ii`` (``boost`` rescales over the
ranks heard from, as always).

The local optimizer then applies the gradient computed before the average.

Recorded schedule (``record``, see :mod:`mpisgd.gossip.base`), each event at
this rank's step: ``("send", neighbour, stamp = step)`` per model queued;
at each average ``("average", sender, stamp = the sender's step)`` per model
received since the last average (logged where the messages are taken, before
:meth:`Swift.mix`, so a mix that ignored them would be caught by a replay),
and in standard mode ``("stored", neighbour, stamp)`` per stored model of a
silent neighbour counted again.
"""

from ..algorithm import Option, one_of, positive, register
from ..comm import Messenger, tags
from ..errors import UsageError
from .asynchronous import AsyncGossip
from .topology import MIXING_KINDS, mixing_weights

MODES = ("standard", "memory-efficient")


@register
class Swift(AsyncGossip):
    name = "swift"
    summary = "Swift: wait-free; send the model to the neighbours every step, average what has arrived"
    options = {**AsyncGossip.options,
               "avg_period": Option(1, "steps between averages with the received models", positive),
               "weights": Option("metropolis", "mixing weights: metropolis (doubly stochastic), swift (the "
                                               "official degree negotiation) or uniform (1/(deg+1))",
                                 one_of(*MIXING_KINDS)),
               "mode": Option("memory-efficient", "standard: a silent neighbour counts with its last model "
                                          "(one stored model per neighbour); memory-efficient: only the "
                                          "models received since the last average", one_of(*MODES)),
               "boost": Option(False, "memory-efficient mode: scale the weights of the ranks heard from "
                                      "up to sum to one (Swift's weight boost)")}

    @classmethod
    def resolve_options(cls, given: dict) -> dict:
        config = super().resolve_options(given)
        if config["boost"] and config["mode"] != "memory-efficient":
            raise UsageError("swift: boost applies to mode=memory-efficient only "
                             "(the standard mode counts every neighbour)")
        return config

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self.stored = {}  # standard mode: neighbour -> the newest Message received from it (x_j)
        self.last_weights = {}  # the weights of the last average: {rank: weight}, self included
        row = mixing_weights(self.graph, self.comm.rank, self.weights, step=0)  # bad weights: fail now
        self.fixed_row = None if getattr(self.graph, "time_varying", False) else row

    def forget(self, rank: int) -> None:
        self.stored.pop(rank, None)

    def mixing_row(self) -> dict:
        """``{j: w_ij}`` over this rank and its in-neighbours at the current step."""
        if self.fixed_row is not None:
            return self.fixed_row
        return mixing_weights(self.graph, self.comm.rank, self.weights, step=self.steps)

    def before_step(self) -> None:
        model = self.model_to_host()
        for peer in self.neighbours():
            self.messenger.send(peer, tags.MODEL, model, header=self.stamp())
            self.log("send", peer, self.steps)
        if self.steps % self.avg_period == 0:
            newest = Messenger.newest(self.messenger.receive(tag=tags.MODEL))
            for (source, _), message in newest.items():
                self.log("average", source, message.header[0])
            self.mix(newest)

    def mix(self, newest: dict) -> None:
        """Average with ``newest`` (``{(source, tag): Message}``: the newest model from each
        neighbour since the last average) as the mode says; sets :attr:`last_weights`."""
        rank, row = self.comm.rank, self.mixing_row()
        lost = self.survivors.lost
        received = {source: m for (source, _), m in newest.items()
                    if source in row and source != rank and source not in lost}
        if self.mode == "standard":
            for source in (self.stored.keys() - received.keys()) if self.record is not None else ():
                self.log("stored", source, self.stored[source].header[0])
            self.stored.update(received)
            received = {source: m for source, m in self.stored.items() if source in row}
        used = {source: row[source] for source in received}
        if self.boost:
            heard = row[rank] + sum(used.values())  # wb
            used = {source: weight / heard for source, weight in used.items()}
            self_weight = row[rank] / heard
        else:
            self_weight = 1.0 - sum(used.values())
        self.last_weights = {rank: self_weight, **used}
        if received:
            self.host *= self_weight
            for source, message in received.items():
                self.host += used[source] * message.data
            self.host_to_model()
            self.note_staleness(received.values())
