"""Swift, wait-free decentralized learning (Bornstein et al., ICLR 2023; official mpi4py code).

Every step, after backward, rank ``i`` sends its model to each neighbour
(non-blocking, through the bounded outbox: a neighbour whose previous
message is still in flight gets only the newest model later). Every
``avg_period`` steps it averages, memory-efficient mode, with the newest
model received from each neighbour since the last average:

    x_i <- w_self x_i + sum_{j received} w_ij x_j,   w_self = 1 - sum_{j received} w_ij

with ``w`` the topology's mixing weights (``uniform``: 1/(deg+1), or
``metropolis``), so the weights used always sum to one. It never waits on a
neighbour: one that sent nothing simply does not take part. The local
optimizer then applies the gradient computed before the average.
"""

from ..algorithm import Option, one_of, positive, register
from ..comm import Messenger, tags
from .asynchronous import AsyncGossip
from .topology import mixing_weights


@register
class Swift(AsyncGossip):
    name = "swift"
    summary = "Swift: wait-free; send the model to the neighbours every step, average what has arrived"
    options = {**AsyncGossip.options,
               "avg_period": Option(1, "steps between averages with the received models", positive),
               "weights": Option("uniform", "mixing weights: uniform or metropolis", one_of("uniform", "metropolis"))}

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self.last_weights = {}

    def before_step(self) -> None:
        model = self.model_to_host()
        for peer in self.neighbours():
            self.messenger.send(peer, tags.MODEL, model, header=self.stamp())
        if self.steps % self.avg_period == 0:
            self.average()

    def average(self) -> None:
        newest = Messenger.newest(self.messenger.receive(tag=tags.MODEL))
        weights = mixing_weights(self.graph, self.comm.rank, self.weights, step=self.steps)
        received = {source: m for (source, _), m in newest.items() if source in weights}
        used = {source: weights[source] for source in received}
        self_weight = 1.0 - sum(used.values())
        self.last_weights = {self.comm.rank: self_weight, **used}
        if received:
            self.host *= self_weight
            for source, message in received.items():
                self.host += used[source] * message.data
            self.host_to_model()
            self.note_staleness(received.values())
