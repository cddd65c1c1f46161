"""Slow compute, the harness's one straggler option: ``--slow-ranks`` take ``--slow-factor`` times longer.

Slow links are not emulated here: they come from the emulated cluster
(:mod:`mpisgd.bench.cluster`) or from a throttle plugged into the
algorithm's messenger (``mpisgd.train.run(..., throttle=...)``).
"""

import time

from ..errors import UsageError


class Straggler:
    """After every local step a straggler rank sleeps ``slow_factor - 1`` times the step's duration."""

    def __init__(self, config, rank: int, size: int):
        slow = config.slow_rank_list()
        if any(r >= size for r in slow):
            raise UsageError(f"--slow-ranks {config.slow_ranks} names a rank outside 0..{size - 1}")
        self.extra = config.slow_factor - 1 if rank in slow else 0.0

    def after_step(self, dist, began: float) -> None:
        """Stretch the step that started at ``began`` (``time.perf_counter()``)."""
        if self.extra > 0:
            slow_down(dist, (time.perf_counter() - began) * self.extra)


def slow_down(dist, seconds: float) -> None:
    """A straggler's extra compute time: sleep (like a busy GPU), keeping messages moving."""
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        time.sleep(min(left, 0.002))
        dist.progress()
