"""What the asynchronous gossip algorithms (Swift, DivShare, AD-PSGD) share.

Ranks run at their own pace and talk only through the peer-to-peer
:class:`~mpisgd.comm.Messenger`; nobody waits for a slow peer (except an
AD-PSGD active worker for the one passive worker it is averaging with).
Every message carries the sender's step and send time, so the receiver can
measure the staleness of what it averages: its age in seconds (on one clock:
exact on one machine, NTP-accurate across nodes) and the step lag
``my step - sender's step`` (negative when the sender is ahead).

- Set-up, leaving and the messenger: :mod:`mpisgd.gossip.base` (a slow
  uplink for straggler experiments is plugged in from outside:
  ``algorithm.messenger.throttle = Throttle(bytes_per_second)``).
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

from .base import GossipAlgorithm


class AsyncGossip(GossipAlgorithm):
    """Base class of the asynchronous gossip algorithms."""

    asynchronous = True  # ranks may take different numbers of steps in the same time
    header_size = 2  # the sender's step and send time

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        self.staleness_sum, self.lag_sum, self.averaged = 0.0, 0.0, 0
        self.clock_zero = self.comm.bcast_object(time.time())  # headers hold small times (float32-safe)

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

    def statistics(self) -> dict:
        stats = super().statistics()
        stats["staleness"] = self.staleness_sum / self.averaged if self.averaged else None
        stats["step_lag"] = self.lag_sum / self.averaged if self.averaged else None
        stats["delivery"] = self.messenger.delivery()
        stats["messages_dropped"] = self.messenger.dropped
        return stats
