"""The report's figures: test accuracy and loss against wall time and against bytes sent per rank; for
``mpisgd optimize`` runs, the gap f - f* on a log scale against wall time and against epochs.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no
global backend state), imported only when the figures are made. Each run
keeps one colour in every figure. The accuracy figures add, for the runs that
have them, the per-node accuracy (the ranks' own models, :meth:`~.runs.Run.node_points`):
the mean over the nodes with the standard deviation as error bars, dashed.
"""

from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple

from ..errors import UsageError


class Axis(NamedTuple):
    key: str  # of the epoch records
    label: str
    scale: float  # of the recorded values, for the axis
    words: str  # in the title


class Metric(NamedTuple):
    words: str  # in the title
    label: str
    curves: tuple  # (record key, line style, legend text or None) per curve of a run


X_AXES = {
    "time": Axis("wall_s", "wall time (s)", 1.0, "wall time"),
    "bytes": Axis("bytes_sent", "MB sent per rank (rank 0's count)", 1e-6, "bytes sent per rank"),
    "epoch": Axis("epoch", "epoch", 1.0, "epochs"),
}
Y_AXES = {
    "accuracy": Metric("Test accuracy", "test accuracy", (("accuracy", "-", None),)),
    "loss": Metric("Loss", "loss", (("test_loss", "-", "test loss"), ("loss", ":", "training loss"))),
}
FIGURES = [(y, x) for y in Y_AXES for x in ("time", "bytes")]
GAP_FIGURES = [("gap", "time"), ("gap", "epoch")]  # optimize runs (their ``gap`` records)
GAP = Metric("Optimality gap f - f*", "f - f* (log scale)", (("gap", "-", None),))


def _metric(y: str) -> Metric:
    return GAP if y == "gap" else Y_AXES[y]


def title(y: str, x: str) -> str:
    return f"{_metric(y).words} against {X_AXES[x].words}"


def file_name(y: str, x: str) -> str:
    return f"{y}_vs_{x}.png"


def figures_for(runs=None) -> list:
    """The (y, x) figures of ``runs``: the training ones unless every run is an optimize run, the gap ones when
    any is (every figure when ``runs`` is None)."""
    if runs is None:
        return FIGURES + GAP_FIGURES
    optimize = any(run.gaps for run in runs)
    training = any(run.epochs for run in runs) or not optimize
    return (FIGURES if training else []) + (GAP_FIGURES if optimize else [])


def figure_names(runs=None) -> List[Tuple[str, str]]:
    """(title, file name) of every figure of ``runs`` (default: every possible one), in the order written."""
    return [(title(y, x), file_name(y, x)) for y, x in figures_for(runs)]


def _canvas():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("the plots need matplotlib: pip install matplotlib") from None
    figure = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def draw(runs: Sequence, labels: Sequence[str], y: str, x: str):
    """One figure: a line per run (its evaluations) of metric ``y`` against axis ``x``."""
    from matplotlib.lines import Line2D

    axis, metric = X_AXES[x], _metric(y)
    figure = _canvas()
    axes = figure.subplots()
    handles, nodes = [], False
    for number, (run, label) in enumerate(zip(runs, labels)):
        records = run.gaps if y == "gap" else run.epochs
        if not records:
            continue
        colour = f"C{number % 10}"
        xs = [record[axis.key] * axis.scale for record in records]
        for key, style, _ in metric.curves:
            ys = [max(record[key], 1e-300) for record in records] if y == "gap" else [r[key] for r in records]
            axes.plot(xs, ys, linestyle=style, marker="o", markersize=3, color=colour)
        handles.append(Line2D([], [], color=colour, marker="o", markersize=3,
                              label=label if run.complete else f"{label} (incomplete)"))
        nodes = (_node_curve(axes, run, axis, colour) if y == "accuracy" else False) or nodes
    handles += [Line2D([], [], color="grey", linestyle=style, label=text) for _, style, text in metric.curves if text]
    if nodes:
        handles.append(Line2D([], [], color="grey", linestyle="--", marker="s", markerfacecolor="none",
                              label=NODES_LEGEND))
    if y == "gap":
        axes.set_yscale("log")
    axes.set_title(title(y, x))
    axes.set_xlabel(axis.label)
    axes.set_ylabel(metric.label)
    axes.grid(True, alpha=0.3)
    if handles:
        axes.legend(handles=handles, fontsize="small")
    return figure


NODES_LEGEND = "nodes' own models: mean ± std"


def _node_curve(axes, run, axis, colour) -> bool:
    """The run's per-node accuracy (mean, std error bars) at the points whose x is known; whether any."""
    points = [p for p in run.node_points() if p.get(axis.key) is not None]
    if not points:
        return False
    axes.errorbar([p[axis.key] * axis.scale for p in points], [p["mean"] for p in points],
                  yerr=[p["std"] for p in points], linestyle="--", marker="s", markersize=4, markerfacecolor="none",
                  color=colour, capsize=3, alpha=0.8)
    return True


def write_figures(runs: Sequence, labels: Sequence[str], directory: Path) -> List[Path]:
    """Write every figure of ``runs`` (:func:`figures_for`) as PNG into ``directory``; return the paths."""
    paths = []
    for y, x in figures_for(runs):
        path = Path(directory) / file_name(y, x)
        draw(runs, labels, y, x).savefig(path, dpi=120)
        paths.append(path)
    return paths
