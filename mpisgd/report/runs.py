"""Training runs read back from the JSON-lines files of ``mpisgd train --metrics``.

A metrics file is only ever appended to, so it may hold several runs one
after another. Each run opens with a ``start`` record, has one ``epoch``
record per evaluation (``mpisgd optimize`` runs: one ``gap`` record per
epoch end instead) and ends with its ``summary``; a run that was killed
has no summary (it ends where the next ``start`` begins, or at the end of
the file). Other events (``step``, or foreign lines) are skipped.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..errors import UsageError

# The numbers every evaluation record carries (see mpisgd/train/evaluate.py and mpisgd/train/records.py).
EPOCH_FIELDS = ("epoch", "wall_s", "loss", "test_loss", "accuracy", "bytes_sent", "comm_wait_s")
GAP_FIELDS = ("epoch", "wall_s", "gap", "relative_gap")  # of an optimize run's records (mpisgd/optimize/records.py)
NODE_FIELDS = ("mean", "std", "min", "max")  # node_accuracy_<field>: the ranks' own models (mpisgd/train/nodes.py)


@dataclass
class Run:
    """One training run of one metrics file."""

    source: Path  # the file, as named on the command line or found in a named directory
    index: int = 0  # 1-based position among the runs of its file
    runs_in_file: int = 1
    start: Optional[dict] = None
    epochs: List[dict] = field(default_factory=list)
    gaps: List[dict] = field(default_factory=list)  # the ``gap`` records of an optimize run
    summary: Optional[dict] = None

    @property
    def complete(self) -> bool:
        """Whether the run ended with its summary record (else it was killed or is still running)."""
        return self.summary is not None

    def _field(self, key: str):
        for record in (self.summary, self.start, *self.epochs):
            if record and key in record:
                return record[key]
        return None

    @property
    def origin(self) -> str:
        """The file, and which of its runs this is when it holds several."""
        if self.runs_in_file == 1:
            return str(self.source)
        return f"{self.source} (run {self.index} of {self.runs_in_file})"

    @property
    def algorithm(self) -> str:
        return str(self._field("algorithm") or "?")

    @property
    def world_size(self):
        return self._field("world_size")

    def results(self) -> dict:
        """The figures of the table: the summary's, or rank 0's at the last evaluation of an incomplete run.

        Keys: ``final_accuracy``, ``target_accuracy``, ``time_to_accuracy_s``,
        ``bytes_sent`` (per rank), ``comm_wait_s`` (per rank), ``wall_s``, ``epochs``.
        """
        if self.summary is not None:
            keys = ("final_accuracy", "target_accuracy", "time_to_accuracy_s", "bytes_sent", "comm_wait_s",
                    "wall_s", "epochs")
            return {key: self.summary.get(key) for key in keys}
        config = (self.start or {}).get("config")
        target = config.get("target_accuracy") if isinstance(config, dict) else None
        reached = None
        if isinstance(target, (int, float)):  # as the training loop measures it: the first evaluation at target
            reached = next((e["wall_s"] for e in self.epochs if e["accuracy"] >= target), None)
        last = self.epochs[-1] if self.epochs else {}
        return {"final_accuracy": last.get("accuracy"), "target_accuracy": target, "time_to_accuracy_s": reached,
                "bytes_sent": last.get("bytes_sent"), "comm_wait_s": last.get("comm_wait_s"),
                "wall_s": last.get("wall_s"), "epochs": last.get("epoch")}


    def node_points(self) -> List[dict]:
        """The per-node accuracy of the ranks' own models: a dict (``epoch``, ``wall_s``, ``bytes_sent`` or None,
        ``nodes``, ``mean``, ``std``, ``min``, ``max``, ``final``) per mid-run epoch of the summary's
        ``node_accuracy_by_epoch`` (asynchronous runs), then the final one (before the final average), placed
        at the final epoch record. Empty for a run without them (sync, older files)."""
        bytes_at = {record["epoch"]: record["bytes_sent"] for record in self.epochs}
        points = [{**point, "bytes_sent": bytes_at.get(point.get("epoch")), "final": False}
                  for point in (self.summary or {}).get("node_accuracy_by_epoch") or []
                  if all(_number(point.get(key)) for key in ("epoch", "wall_s", *NODE_FIELDS))]
        final = next((r for r in reversed(self.epochs) if _number(r.get("node_accuracy_mean"))), None)
        if final is not None and all(_number(final.get(f"node_accuracy_{key}")) for key in NODE_FIELDS):
            points.append({"epoch": final["epoch"], "wall_s": final["wall_s"], "bytes_sent": final["bytes_sent"],
                           "nodes": len(final.get("node_accuracy") or []), "final": True,
                           **{key: final[f"node_accuracy_{key}"] for key in NODE_FIELDS}})
        return points


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def input_files(inputs) -> List[Path]:
    """The metrics files named by ``inputs``: files, and the ``*.jsonl`` files of directories (once each)."""
    files, seen = [], set()
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.jsonl") if p.is_file())
            if not found:
                raise UsageError(f"{name}: no *.jsonl files in this directory")
        elif path.exists():
            found = [path]
        else:
            raise UsageError(f"{name}: no such file or directory")
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def read_runs(files) -> List[Run]:
    """Every run of every file, in order."""
    return [run for path in files for run in read_file(path)]


def read_file(path: Path) -> List[Run]:
    """The runs of one metrics file; a file without any is an error."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    runs, current, count = [], None, 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record = _parse(path, number, raw)
        count += 1
        event = record.get("event")
        if event == "start" or (current is None and event in ("epoch", "gap", "summary")):
            if current is not None:  # the previous run never wrote its summary
                runs.append(current)
            current = Run(source=Path(path))
        if event == "start":
            current.start = record
        elif event == "epoch":
            _check_epoch(path, number, record)
            current.epochs.append(record)
        elif event == "gap":
            _check_gap(path, number, record)
            current.gaps.append(record)
        elif event == "summary":
            current.summary = record
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    if count == 0:
        raise UsageError(f"{path}: no records (empty file)")
    if not runs:
        raise UsageError(f"{path}: no training runs (no start, epoch, gap or summary record)")
    for index, run in enumerate(runs, 1):
        run.index, run.runs_in_file = index, len(runs)
    return runs


def _parse(path, number: int, raw: bytes) -> dict:
    try:
        record = json.loads(raw)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise UsageError(f"{path}, line {number}: not JSON") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path}, line {number}: not a JSON object")
    return record


def _check_epoch(path, number: int, record: dict) -> None:
    for key in EPOCH_FIELDS:
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{path}, line {number}: epoch record without a number {key!r}")


def _check_gap(path, number: int, record: dict) -> None:
    for key in GAP_FIELDS:
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{path}, line {number}: gap record without a number {key!r}")


def labels(runs) -> List[str]:
    """A distinct name per run: its algorithm, plus the file's stem, then the run's index, when needed."""
    def name(run, level):
        return [run.algorithm, f"{run.algorithm} ({run.source.stem})",
                f"{run.algorithm} ({run.source.stem} #{run.index})",
                f"{run.algorithm} ({run.source} #{run.index})"][level]

    names = []
    for run in runs:
        for level in range(4):
            candidate = name(run, level)
            if level == 3 or sum(name(other, level) == candidate for other in runs) == 1:
                names.append(candidate)
                break
    return names
