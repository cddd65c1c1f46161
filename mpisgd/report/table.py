"""The Markdown results table: one row per run, and the figures below it."""

import math
from typing import List, Sequence, Tuple

COLUMNS = ("run", "algorithm", "ranks", "final accuracy", "time to accuracy", "bytes sent per rank",
           "blocked in comm per rank", "wall time", "status", "file")
MISSING = "—"
NODE_COLUMNS = ("run", "algorithm", "final model", "per-node mean ± std", "per-node min – max", "nodes")


def _is_number(value) -> bool:
    """A JSON number that can be printed (not null, not a boolean, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _fixed(value, digits: int, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if _is_number(value) else MISSING


def format_bytes(n) -> str:
    """Bytes in B, kB, MB or GB (powers of 1000), two decimals above bytes."""
    if not _is_number(n):
        return MISSING
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def format_time_to_accuracy(reached, target) -> str:
    """``1.23 s (target 0.900)``, ``not reached (target 0.900)``, or a dash without a target."""
    if not _is_number(target):
        return MISSING
    when = _fixed(reached, 2, " s") if reached is not None else "not reached"
    return f"{when} (target {target:.3f})"


def status(run) -> str:
    if run.complete:
        return "complete"
    if not run.epochs:
        return "incomplete (no evaluation)"
    return f"incomplete (no summary; rank 0 at epoch {run.epochs[-1]['epoch']})"


def row(run, label: str) -> List[str]:
    """The table cells of one run, in the order of :data:`COLUMNS`."""
    r = run.results()
    return [label, run.algorithm, str(run.world_size) if run.world_size is not None else MISSING,
            _fixed(r["final_accuracy"], 4), format_time_to_accuracy(r["time_to_accuracy_s"], r["target_accuracy"]),
            format_bytes(r["bytes_sent"]), _fixed(r["comm_wait_s"], 3, " s"), _fixed(r["wall_s"], 2, " s"),
            status(run), f"`{run.origin}`"]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def markdown_table(runs: Sequence, labels: Sequence[str]) -> str:
    return _markdown(COLUMNS, [row(run, label) for run, label in zip(runs, labels)])


def node_rows(runs: Sequence, labels: Sequence[str]) -> List[List[str]]:
    """The per-node table's cells: one row per run whose final epoch record has per-node accuracy."""
    rows = []
    for run, label in zip(runs, labels):
        final = [point for point in run.node_points() if point["final"]]
        if final:
            p = final[-1]
            rows.append([label, run.algorithm, _fixed(run.results()["final_accuracy"], 4),
                         f"{p['mean']:.4f} ± {p['std']:.4f}", f"{p['min']:.4f} – {p['max']:.4f}", str(p["nodes"])])
    return rows


def _markdown(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_escape(cell) for cell in cells) + " |" for cells in rows]
    return "\n".join(lines)


def results_markdown(runs: Sequence, labels: Sequence[str], figures: Sequence[Tuple[str, str]]) -> str:
    """The whole ``results.md``: the table, what its columns mean, and the figures (relative paths)."""
    files = len({run.source for run in runs})
    parts = [
        "# Training runs",
        f"{len(runs)} run{'s' * (len(runs) != 1)} from {files} metrics file{'s' * (files != 1)} "
        "(`mpisgd train --metrics`), made by `mpisgd report`.",
        markdown_table(runs, labels),
        "Bytes sent and time blocked in communication are per rank (the mean over ranks, from the run's "
        "summary). An incomplete run (no summary record: killed, or still running) shows rank 0's figures "
        "at its last evaluation.",
    ]
    nodes = node_rows(runs, labels)
    if nodes:
        parts += ["## Per-node accuracy", _markdown(NODE_COLUMNS, nodes),
                  "The accuracy of each training rank's own model on the whole test set just before the final "
                  "average (what the gossip papers report), beside the final model's (the averaged model, the "
                  "center or the leader: the final accuracy above): the mean ± the standard deviation over the "
                  "nodes, the lowest and highest. Runs whose ranks always hold one model (sync) have none."]
    for title, name in figures:
        parts += [f"## {title}", f"![{title}]({name})"]
    return "\n\n".join(parts) + "\n"
