"""The timeline of ``mpisgd train --trace``: the ranks' trace files drawn as one compact picture, and merged.

``mpisgd report runs/t.rank0.json runs/t.rank1.json --out figs`` (any input
ending in ``.json`` is a trace file) writes ``figs/timeline.png``: one band
per rank, with a row per category (``compute``, ``wait``, ``progress``) of
bars for its spans and ticks at the top of the band where communication
was posted (``comm-post``), against seconds since the first event of any
rank; and ``figs/timeline.json``, all ranks in one Chrome trace to open in
Perfetto (ui.perfetto.dev) or ``chrome://tracing``.
"""

import json
from pathlib import Path
from typing import List

from ..errors import UsageError

PICTURE, MERGED = "timeline.png", "timeline.json"
ROWS = ("compute", "wait", "progress")  # bars, top to bottom within a rank's band
COLOURS = {"compute": "tab:blue", "wait": "tab:red", "progress": "tab:green", "comm-post": "black"}


def read_trace(path) -> dict:
    """One ``--trace`` file's document; UsageError when it is not a Chrome trace of mpisgd."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise UsageError(f"{path}: not a JSON trace ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        raise UsageError(f"{path}: not a trace file of 'mpisgd train --trace' (no traceEvents)")
    return document


def merged(documents) -> dict:
    """All ranks' events in one document (each rank keeps its ``pid``); notes of full traces kept."""
    events = [event for document in documents for event in document["traceEvents"]]
    notes = [document["otherData"]["note"] for document in documents if "note" in document.get("otherData", {})]
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"notes": notes}}


def draw(documents):
    """The picture (a matplotlib Figure) of ``documents``' events."""
    from .plots import _canvas

    events = [e for document in documents for e in document["traceEvents"] if e.get("ph") in ("X", "i")]
    if not events:
        raise UsageError("the trace files hold no events")
    origin = min(e["ts"] for e in events)
    ranks = sorted({e["pid"] for e in events})
    figure = _canvas()
    figure.set_size_inches(10, 1.0 + 0.7 * len(ranks))
    axes = figure.add_subplot()
    height = 1.0 / (len(ROWS) + 1)
    for band, rank in enumerate(ranks):
        top = len(ranks) - band  # rank 0 at the top
        mine = [e for e in events if e["pid"] == rank]
        for row, category in enumerate(ROWS):
            spans = [((e["ts"] - origin) / 1e6, e.get("dur", 0) / 1e6) for e in mine
                     if e["ph"] == "X" and e.get("cat") == category]
            bottom = top - (row + 2) * height
            axes.broken_barh(spans, (bottom, height * 0.9), facecolors=COLOURS[category],
                             label=category if band == 0 else None)
        ticks = [(e["ts"] - origin) / 1e6 for e in mine if e.get("cat") == "comm-post"]
        axes.vlines(ticks, top - height, top - 0.1 * height, colors=COLOURS["comm-post"], linewidth=0.6,
                    label="comm posted" if band == 0 else None)
    axes.set_yticks([len(ranks) - band - 0.5 for band in range(len(ranks))], [f"rank {r}" for r in ranks])
    axes.set_ylim(0, len(ranks))
    axes.set_xlabel("seconds since the first event")
    axes.set_title("Timeline: compute, communication posted, waits and progress calls per rank")
    figure.legend(loc="outside lower center", fontsize="small", ncol=4)
    return figure


def write_timeline(paths, directory: Path) -> List[Path]:
    """Draw and merge the trace files ``paths`` into ``directory``; returns the written paths."""
    documents = [read_trace(path) for path in paths]
    picture, merged_path = Path(directory) / PICTURE, Path(directory) / MERGED
    if any(Path(path).resolve() in (picture.resolve(), merged_path.resolve()) for path in paths):
        raise UsageError(f"--out {directory}: would overwrite an input trace")
    figure = draw(documents)
    try:
        figure.savefig(picture, dpi=120)
        merged_path.write_text(json.dumps(merged(documents), separators=(",", ":")), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--out {directory}: cannot write {error.filename or 'the timeline'} "
                         f"({error.strerror})") from None
    return [picture, merged_path]
