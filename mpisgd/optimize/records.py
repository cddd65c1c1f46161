"""What an optimize run reports: JSONL records (rank 0), the progress bar and the summary line.

Records (each with ``event``, ``algorithm``, ``rank``, ``world_size``, ``time``, as ``train`` writes them):

``start``    ``command: "optimize"``, ``problem``, ``config`` (the flags), ``f_star``, ``dim``, ``m``, ``n``.
``gap``      one per epoch end, epoch 0 (the start) first: ``epoch``, ``step`` (updates applied so far),
             ``wall_s`` (solver time, gap evaluations left out), ``gap`` (f - f*), ``relative_gap``
             ((f - f*) / (f(x0) - f*)), ``objective`` (f), ``delay_mean`` / ``delay_max`` (of that
             epoch's applied updates; null without delays).
``summary``  ``epochs``, ``steps``, ``wall_s``, ``final_gap``, ``final_relative_gap``, ``target_gap``,
             ``time_to_gap_s`` and ``epochs_to_gap`` (the first record at or below the relative
             ``target_gap``; null if never), ``delays`` ({count, mean, p50, p95, max}; null values
             without delays), ``dropped`` (updates computed on an old snapshot), ``eta``, ``K``, ``A``.
"""

import sys

import numpy as np

from ..train.metrics import MetricsWriter


def delay_summary(delays) -> dict:
    """{count, mean, p50, p95, max} of the applied updates' delays (None values when there are none)."""
    d = np.asarray(delays, dtype=float)
    if d.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "max": None}
    return {"count": int(d.size), "mean": float(d.mean()), "p50": float(np.percentile(d, 50)),
            "p95": float(np.percentile(d, 95)), "max": int(d.max())}


class Records:
    """The records of one run; :meth:`add` takes the history's records in order (live or after the run)."""

    def __init__(self, args, problem, *, rank: int, world_size: int):
        self.rank, self.args = rank, args
        self.talk = rank == 0 and not args.quiet
        self.metrics = MetricsWriter(args.metrics, rank=rank, world_size=world_size, algorithm=args.algorithm)
        self.f_star = float(problem.optimum()[1])
        self.written, self.first_gap, self.reached = [], None, None
        show = self.talk and (args.progress or (args.progress is None and sys.stderr.isatty()))
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=args.epochs, unit="epoch", dynamic_ncols=True, file=sys.stderr)
        self.metrics.record("start", command="optimize", problem=args.problem, config=vars(args),
                            f_star=self.f_star, dim=problem.dim, m=problem.m, n=problem.n)

    def relative(self, gap: float) -> float:
        return gap / self.first_gap if self.first_gap else 0.0

    def add(self, record, delays=()) -> None:
        """Write the ``gap`` record of one history record (``delays``: every applied update's so far)."""
        if self.first_gap is None:
            self.first_gap = record.gap
        previous = self.written[-1].step if self.written else 0
        mine = np.asarray(delays[previous:record.step], dtype=float)
        relative = self.relative(record.gap)
        if self.reached is None and relative <= self.args.target_gap:
            self.reached = record
        self.metrics.record("gap", epoch=record.epoch, step=record.step, wall_s=record.time_s, gap=record.gap,
                            relative_gap=relative, objective=record.gap + self.f_star,
                            delay_mean=float(mine.mean()) if mine.size else None,
                            delay_max=int(mine.max()) if mine.size else None)
        self.written.append(record)
        if self.bar is not None and record.epoch > 0:
            self.bar.update(1)

    def summary(self, solver) -> dict:
        for record in solver.history[len(self.written):]:
            self.add(record, solver.delays)
        last = solver.history[-1]
        schedule = solver.schedule
        summary = self.metrics.record(
            "summary", problem=self.args.problem, epochs=last.epoch, steps=last.step, wall_s=last.time_s, final_gap=last.gap,
            final_relative_gap=self.relative(last.gap), target_gap=self.args.target_gap,
            time_to_gap_s=self.reached.time_s if self.reached else None,
            epochs_to_gap=self.reached.epoch if self.reached else None, delays=delay_summary(solver.delays),
            dropped=solver.dropped, eta=schedule.eta, K=schedule.K, A=schedule.A)
        self.metrics.close()
        if self.bar is not None:
            self.bar.close()
        if self.talk:
            print(format_summary(summary), flush=True)
        return summary


def format_summary(s: dict) -> str:
    reached = "not reached" if s["time_to_gap_s"] is None else f"{s['time_to_gap_s']:.3f} s"
    delays = s["delays"]
    tail = ("" if not delays["count"]
            else f", delays mean {delays['mean']:.2f} p95 {delays['p95']:g} max {delays['max']}")
    return (f"{s['algorithm']} on {s.get('problem', '')}: {s['epochs']:g} epochs, {s['steps']} updates, "
            f"relative gap {s['final_relative_gap']:.2e}, time to {s['target_gap']:g}: {reached}, "
            f"wall {s['wall_s']:.3f} s{tail}")
