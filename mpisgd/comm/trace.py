"""The per-rank timeline of ``--trace PATH``: a Chrome trace (Trace Event Format), viewable in Perfetto.

A :class:`Recorder` keeps this rank's events in memory, at most ``limit``
of them (later ones are counted, not kept, and the file says so), and
:meth:`Recorder.write` saves them as ``{"traceEvents": [...]}``: complete
events (``ph: "X"``, ``ts``/``dur`` in microseconds) and instants
(``ph: "i"``), with ``pid`` the rank and one ``tid`` per category, each a
named track: ``compute`` (a step's forward, backward and optimizer step),
``comm-post`` (communication started: ``Iallreduce``, ``Isend``), ``wait``
(blocked in MPI or polling for a message) and ``progress`` (``Test`` on a
request in flight). Times are wall-clock microseconds since the epoch, so
the files of all ranks share one time axis (``mpisgd report`` merges them).
Each rank writes :func:`rank_path` of ``PATH``.

Example::

    >>> from mpisgd.comm.trace import rank_path
    >>> str(rank_path("runs/t.json", 3))
    'runs/t.rank3.json'
"""

import json
import os
from pathlib import Path
from time import perf_counter

from . import activity

CATEGORIES = ("compute", "comm-post", "wait", "progress")  # their tids are 1, 2, 3, 4
TID = {category: number for number, category in enumerate(CATEGORIES, 1)}
LIMIT = 200_000  # events kept per rank (some 30 MB)


def rank_path(path, rank: int) -> Path:
    """``PATH`` with ``.rank{R}`` before its suffix (``t.json`` -> ``t.rank0.json``; no suffix: ``.json`` added)."""
    path = Path(path)
    suffix = path.suffix or ".json"
    return path.with_name(f"{path.stem if path.suffix else path.name}.rank{rank}{suffix}")


class _Timed:
    """The context of :meth:`Recorder.timed`: one complete event from ``__enter__`` to ``__exit__``."""

    __slots__ = ("recorder", "name", "category", "start")

    def __init__(self, recorder, name, category):
        self.recorder, self.name, self.category = recorder, name, category

    def __enter__(self):
        self.start = perf_counter()
        return self

    def __exit__(self, *exc):
        self.recorder.span(self.name, self.category, self.start, perf_counter())


class Recorder:
    """This rank's trace events in memory (``perf_counter()`` times), written out by :meth:`write`."""

    def __init__(self, rank: int, limit: int = LIMIT):
        self.rank, self.limit = rank, limit
        self.events = []  # (phase, name, category, start, duration, detail)
        self.dropped = 0
        self.full_at = None

    def _add(self, event) -> None:
        if len(self.events) < self.limit:
            self.events.append(event)
        else:
            self.dropped += 1
            if self.full_at is None:
                self.full_at = event[3]

    def span(self, name: str, category: str, start: float, end: float, detail: str = None) -> None:
        """A complete event from ``start`` to ``end``."""
        self._add(("X", name, category, start, end - start, detail))

    def instant(self, name: str, category: str, moment: float, detail: str = None) -> None:
        self._add(("i", name, category, moment, 0.0, detail))

    def timed(self, name: str, category: str = "compute") -> _Timed:
        """``with recorder.timed("forward"):`` records the block as a complete event."""
        return _Timed(self, name, category)

    def document(self) -> dict:
        """The Trace Event Format document of the events so far."""
        offset, pid = activity.STATE.wall_offset, self.rank
        events = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": f"rank {pid}"}}]
        events += [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": category}}
                   for category, tid in TID.items()]
        for phase, name, category, start, duration, detail in list(self.events):
            event = {"ph": phase, "name": name, "cat": category, "pid": pid, "tid": TID[category],
                     "ts": round((start + offset) * 1e6, 1)}
            if phase == "X":
                event["dur"] = round(duration * 1e6, 1)
            else:
                event["s"] = "t"
            if detail:
                event["args"] = {"detail": detail}
            events.append(event)
        other = {"rank": pid, "events": len(self.events), "dropped_events": self.dropped}
        if self.dropped:
            other["note"] = (f"the trace reached its limit of {self.limit} events at "
                             f"{activity.clock(self.full_at)}; {self.dropped} later events were not kept")
            events.append({"ph": "i", "name": "trace full", "cat": "progress", "pid": pid, "tid": TID["progress"],
                           "s": "p", "ts": round((self.full_at + offset) * 1e6, 1), "args": {"note": other["note"]}})
        return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}

    def write(self, path) -> Path:
        """Write :meth:`document` to :func:`rank_path` of ``path`` (atomically: a temporary file, then a
        rename); returns the file's path."""
        activity.flush_poll()
        target = rank_path(path, self.rank)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(self.document(), out, separators=(",", ":"))
        os.replace(temporary, target)
        return target
