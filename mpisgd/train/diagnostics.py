"""The run's diagnostics: the stall watchdog (``--stall-timeout``) and the timeline (``--trace``).

Both read the activity hooks of :mod:`mpisgd.comm.activity`, switched on
only when one of them is asked for. The trace is written when the run ends
(also after an error) and, when the watchdog ends a stalled job, just
before it does.
"""

from ..comm import activity
from ..comm.trace import Recorder
from ..comm.watchdog import Watchdog


class Diagnostics:
    """Start what ``config`` asks for on this rank; :meth:`close` stops the watchdog and writes the trace."""

    def __init__(self, config, rank: int):
        self.path, self.recorder, self.watchdog = config.trace, None, None
        if config.trace:
            self.recorder = activity.TRACE = Recorder(rank)
            activity.switch_on()
        if config.stall_timeout:
            self.watchdog = Watchdog(config.stall_timeout, rank, on_stall=self.write)

    def watch(self) -> None:
        """Training starts (the set-up is done): the watchdog's clock starts."""
        if self.watchdog is not None:
            self.watchdog.start()

    def write(self) -> None:
        if self.recorder is not None:
            self.recorder.write(self.path)

    def close(self) -> None:
        if self.watchdog is not None and self.watchdog.started:
            self.watchdog.stop()
        self.write()
        activity.switch_off()
