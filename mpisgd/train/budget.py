"""The clock of a training run and its ``--time-budget``."""

import math
import time


class TimeBudget:
    """Seconds since training started, and whether the budget (``seconds``; None: none) is spent.

    Asynchronous ranks check it every step and stop on their own; the other
    algorithms check it at evaluations, where the ranks agree on it through
    the evaluation's all-reduce (:mod:`.evaluate`)."""

    def __init__(self, seconds=None):
        self.seconds = math.inf if seconds is None else seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def spent(self) -> bool:
        return self.elapsed() > self.seconds
