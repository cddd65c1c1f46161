"""Slow compute, the harness's one straggler option: ``--slow-ranks`` take ``--slow-factor`` times longer.

Slow links are not emulated here: they come from the emulated cluster
(:mod:`mpisgd.bench.cluster`) or from a throttle plugged into the
algorithm's messenger (``mpisgd.train.run(..., throttle=...)``).
"""

import time

from ..errors import UsageError


class Straggler:
    """After every local step a straggler rank sleeps ``slow_factor - 1`` times the step's compute time:
    its duration less the time it spent blocked in the algorithm's communication (with several slow
    ranks, a step's wait for another straggler's sleep must not stretch the next sleep: the steps
    would grow geometrically)."""

    def __init__(self, config, rank: int, size: int):
        slow = config.slow_rank_list()
        if any(r >= size for r in slow):
            raise UsageError(f"--slow-ranks {config.slow_ranks} names a rank outside 0..{size - 1}")
        self.extra = config.slow_factor - 1 if rank in slow else 0.0
        self.waited = 0.0  # the algorithm's wait_s at the end of the last stretched step

    def after_step(self, dist, began: float) -> None:
        """Stretch the step that started at ``began`` (``time.perf_counter()``)."""
        if self.extra > 0:
            waited = dist.statistics()["wait_s"]
            blocked, self.waited = max(0.0, waited - self.waited), waited
            slow_down(dist, max(0.0, time.perf_counter() - began - blocked) * self.extra)
            self.waited = dist.statistics()["wait_s"]


def slow_down(dist, seconds: float) -> None:
    """A straggler's extra compute time: sleep (like a busy GPU), keeping messages moving."""
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        time.sleep(min(left, 0.002))
        dist.progress()
