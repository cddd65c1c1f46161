"""What the asynchronous gossip algorithms (Swift, DivShare, AD-PSGD) share.

Ranks run at their own pace and talk only through the peer-to-peer
:class:`~mpisgd.comm.Messenger`; nobody waits for a slow peer (except an
AD-PSGD active worker for the one passive worker it is averaging with).
Every message carries the sender's step and send time, so the receiver can
measure the staleness of what it averages: its age in seconds (on one clock:
exact on one machine, NTP-accurate across nodes) and the step lag
``my step - sender's step`` (negative when the sender is ahead).

- ``slow_link`` (seconds per byte, per rank): emulates a slow uplink on
  this rank in the messenger (straggler experiments).
- ``finish()``: the messenger's exit protocol (no rank waits for a peer
  that has finished, nothing is left in flight), then one all-reduce
  average so every rank ends with the same model.
- statistics: ``staleness`` (mean age in seconds of the models or fragments
  averaged), ``step_lag``,
  ``delivery`` (fraction of the messages peers meant to send this rank that
  arrived before it finished; messages replaced or dropped in a sender's
  queue count as not delivered).
"""

import time

import numpy as np

from ..algorithm import Algorithm, Option, non_negative
from ..comm import Messenger
from .topology import parse_topology


class AsyncGossip(Algorithm):
    """Base class of the asynchronous gossip algorithms."""

    asynchronous = True  # ranks may take different numbers of steps in the same time
    max_in_flight = 1  # posted sends per peer; more are queued (newest only)
    drop_on_close = True  # queued messages are stale models when a rank leaves
    options = {
        "topology": Option("full", "peer graph (see docs/topologies.md)"),
        "gossip_seed": Option(0, "seed of the random peer choices (rank r uses the stream (seed, r))"),
        "slow_link": Option(0.0, "emulated uplink of this rank, seconds per byte (0: none; per rank)",
                            non_negative, per_rank=True),
    }

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        # one rank has no peers; every kind of graph degenerates to "full" there
        self.graph = parse_topology(self.topology if self.comm.size > 1 else "full", 1, self.gossip_seed) \
            if self.comm.size == 1 else parse_topology(self.topology, self.comm.size, self.gossip_seed)
        self.rng = np.random.default_rng([self.gossip_seed, self.comm.rank])
        self.messenger = Messenger(self.comm, dtype=self.flat.backend.numpy_dtype(self.flat.params),
                                   header_size=2, max_in_flight=self.max_in_flight,
                                   seconds_per_byte=self.slow_link)
        self.host = self.flat.backend.host_buffer(self.flat.params)  # this rank's model, on the host
        self.staleness_sum, self.lag_sum, self.averaged = 0.0, 0.0, 0
        self.clock_zero = self.comm.bcast_object(time.time())  # headers hold small times (float32-safe)
        self.finished = False

    def neighbours(self) -> list:
        return self.graph.neighbors(self.comm.rank, step=self.steps)

    def model_to_host(self) -> np.ndarray:
        self.flat.backend.to_host(self.flat.params, self.host)
        return self.host

    def host_to_model(self) -> None:
        self.flat.backend.from_host(self.host, self.flat.params)

    def stamp(self) -> list:
        """The header of an outgoing model: this rank's step and the send time."""
        return [self.steps, time.time() - self.clock_zero]

    def note_staleness(self, messages) -> None:
        """Age (seconds since it was sent) and step lag of each model or fragment averaged."""
        now = time.time() - self.clock_zero
        for message in messages:
            self.staleness_sum += now - float(message.header[1])
            self.lag_sum += self.steps - float(message.header[0])
            self.averaged += 1

    def progress(self) -> None:
        self.messenger.progress()

    def serve(self, message) -> None:
        """A message arriving while this rank is leaving (default: discarded)."""

    def leave(self) -> None:
        """The messenger's exit protocol, once."""
        if not self.finished:
            self.messenger.close(serve=self.serve, drop_queued=self.drop_on_close)
            self.finished = True

    def finish(self) -> None:
        self.leave()
        self.comm.allreduce(self.flat.params, average=True)

    def statistics(self) -> dict:
        stats = super().statistics()
        stats["staleness"] = self.staleness_sum / self.averaged if self.averaged else None
        stats["step_lag"] = self.lag_sum / self.averaged if self.averaged else None
        stats["delivery"] = self.messenger.delivery()
        stats["messages_dropped"] = self.messenger.dropped
        return stats

    def close(self) -> None:
        self.leave()
        super().close()
