"""What a run reports: its JSONL records (rank 0), the progress bar and the lines printed for people.

Records: ``start``, ``step`` (every ``--log-every`` steps), ``epoch`` (after
each evaluation) and ``summary`` (:mod:`.summary`); ``step`` and ``epoch``
records carry the algorithm's ``bytes_sent`` and ``comm_wait_s`` so far.
"""

import sys

from .summary import format_epoch, format_summary


def comm_fields(dist) -> dict:
    stats = dist.statistics()
    return {"bytes_sent": stats["bytes_sent"], "comm_wait_s": stats["wait_s"]}


def _progress_bar(total, show):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


class Records:
    """The records, bar and printed lines of one run; ``metrics`` is its :class:`~.metrics.MetricsWriter`."""

    def __init__(self, config, metrics, rank: int, total_steps: int):
        talk = rank == 0 and not config.quiet
        show_bar = talk and (config.progress or (config.progress is None and sys.stderr.isatty()))
        self.bar = _progress_bar(total_steps, show_bar)
        self.say = (self.bar.write if self.bar else print) if talk else (lambda *_: None)
        self.metrics, self.log_every, self.epochs = metrics, config.log_every, config.epochs

    def start(self, **fields) -> None:
        self.metrics.record("start", **fields)

    def resumed(self, step: int, **fields) -> None:
        """A resumed run: a ``resume`` record (the start record's fields, the checkpoint, its step)."""
        self.metrics.record("resume", step=step, **fields)
        self.say(f"resumed from checkpoint {fields['checkpoint']} at step {step}")
        self.advance_to(step)

    def step(self, dist, step: int, epoch: int, loss: float, clock) -> None:
        if self.bar:
            self.bar.update(1)
        if self.log_every and step % self.log_every == 0:
            self.metrics.record("step", step=step, epoch=epoch, wall_s=clock.elapsed(), loss=loss,
                                **comm_fields(dist))

    def advance_to(self, step: int) -> None:
        """Move the progress bar to ``step`` (a serving rank, which takes no steps of its own)."""
        if self.bar and step > self.bar.n:
            self.bar.update(step - self.bar.n)

    def epoch(self, dist, record: dict, *, show: bool = True) -> None:
        self.metrics.record("epoch", **record, **comm_fields(dist))
        if show:
            self.say(format_epoch(record, self.epochs))

    def summary(self, summary: dict) -> None:
        self.metrics.record("summary", **summary)
        self.metrics.close()
        self.say(format_summary(summary))
        if self.bar:
            self.bar.close()
