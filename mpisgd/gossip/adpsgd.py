"""AD-PSGD, asynchronous decentralized parallel SGD (Lian et al., ICML 2018) [memory for the
original algorithm; ALGORITHMS.md §6.2].

Ranks are split by a bipartite topology into active (even) and passive
(odd) workers. After backward, an active worker picks a passive neighbour
at random and averages atomically with it: it sends its model
(``AVERAGE_REQUEST``), waits for the passive worker's model
(``AVERAGE_REPLY``) and both set their model to the midpoint of the two
values exchanged (waiting with a back-off, so a slow passive worker keeps
its core). The local optimizer then applies the gradient computed
before the average (on a possibly stale model). A passive worker serves
requests one at a time between its own steps (and while it is leaving, so
no active worker ever waits for a finished peer); serving one at a time is
what makes each average atomic, and each preserves the pair's sum.

A lost rank (:mod:`mpisgd.gossip.base`): an active worker chooses among the
passive neighbours still alive; one waiting for the reply of a passive
worker that dies gives up that average (its model is unchanged, the step
goes on); a passive worker does not answer a request from a lost rank.

Recorded schedule (``record``, :mod:`mpisgd.gossip.base`): an active worker
logs ``("average", passive peer, stamp = the step of the passive model in the
reply)``, a passive worker ``("serve", active peer, stamp = the active
worker's step in the request)``, each at its own current step; an average is
identified by (active rank, its step).
"""

from ..algorithm import Option, register
from ..comm import UsageError, tags
from ..comm.survivors import PeerLost
from .asynchronous import AsyncGossip


@register
class ADPSGD(AsyncGossip):
    name = "adpsgd"
    summary = "AD-PSGD: active workers average atomically with random passive neighbours"
    options = {**AsyncGossip.options,
               "topology": Option("bipartite", "peer graph (see docs/topologies.md); must be bipartite for "
                                               "adpsgd: even ranks active, odd passive")}

    drop_on_close = False  # a queued reply is awaited by an active worker

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        if self.comm.size > 1 and not self.graph.is_bipartite():
            raise UsageError(f"adpsgd needs a bipartite topology, {self.topology!r} is not (try bipartite)")
        active, _ = self.graph.parts() if self.comm.size > 1 else ([0], [])
        self.active = self.comm.rank in set(active)
        self.averages = 0

    def before_step(self) -> None:
        if self.active:
            neighbours = self.neighbours()
            if neighbours:
                self.average_with(int(self.rng.choice(neighbours)))
        else:
            self.serve_requests()

    def average_with(self, peer: int) -> None:
        model = self.model_to_host()
        self.messenger.send(peer, tags.AVERAGE_REQUEST, model, header=self.stamp())
        try:  # advances the request; backs off
            reply = self.messenger.receive_one(peer, tags.AVERAGE_REPLY, check=lambda: self.check_alive(peer))
        except PeerLost:
            return  # the passive worker died: no average this time
        self.log("average", peer, reply.header[0])
        self.midpoint(reply.data)
        self.note_staleness([reply])
        self.averages += 1

    def midpoint(self, other) -> None:
        """x_i <- (x_i + x_j) / 2 with the partner's model ``other`` (the host buffer holds x_i)."""
        self.host += other
        self.host *= 0.5
        self.host_to_model()

    def check_alive(self, peer: int) -> bool:
        """While waiting for ``peer``: PeerLost when it was found lost (False: nothing happened)."""
        self.notice()
        if peer in self.survivors.lost:
            raise PeerLost([peer])
        return False

    def serve_requests(self) -> None:
        for message in self.messenger.receive(tag=tags.AVERAGE_REQUEST):
            self.serve(message)

    def serve(self, message) -> None:
        if message.tag != tags.AVERAGE_REQUEST or message.source in self.survivors.lost:
            return
        model = self.model_to_host()
        self.messenger.send(message.source, tags.AVERAGE_REPLY, model, header=self.stamp())
        self.log("serve", message.source, message.header[0])
        self.midpoint(message.data)
        self.note_staleness([message])
        self.averages += 1

    def grad_ready(self, index: int) -> None:
        self.messenger.progress()  # never change the model in the middle of a backward pass

    def progress(self) -> None:
        super().progress()
        if not self.active and not self.finished:
            self.serve_requests()

    def statistics(self) -> dict:
        return {**super().statistics(), "averages": self.averages}
