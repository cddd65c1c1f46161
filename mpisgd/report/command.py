"""The ``report`` subcommand: read the runs, write the figures and ``results.md``, print the paths."""

import os
import sys
from pathlib import Path
from typing import List

from ..errors import UsageError
from . import plots, timeline
from .runs import input_files, labels, read_runs
from .table import results_markdown

TABLE = "results.md"


def add_report_command(commands) -> None:
    """Add ``report`` to the ``mpisgd`` command line's subparsers."""
    parser = commands.add_parser(
        "report", help="plots and a Markdown table from metrics files",
        description="Plot test accuracy and loss against wall time and bytes sent per rank, and tabulate the "
                    "runs' results, from the JSONL files of 'mpisgd train --metrics'; for 'mpisgd optimize "
                    "--metrics' runs, the gap f - f* (log scale) against wall time and epochs. Needs no MPI launcher.")
    parser.add_argument("runs", nargs="+", metavar="RUNS",
                        help="metrics files, or directories (their *.jsonl files); a file may hold several runs; "
                             "files ending in .json are the traces of 'train --trace', drawn as timeline.png "
                             "(and merged into timeline.json for Perfetto)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help=f"directory for the PNG figures and {TABLE} (created if missing)")


def report_main(args) -> int:
    """Run ``mpisgd report``; errors in the input or output give one line on stderr and status 2."""
    try:
        written = write_report(args.runs, args.out)
    except UsageError as error:
        sys.stderr.write(f"mpisgd report: error: {error}\n")
        return 2
    for path in written:
        print(path)
    return 0


def write_report(inputs, out) -> List[Path]:
    """Read every run of ``inputs``, write the figures and the table into ``out``; return the written paths.
    Trace files (``*.json``, from ``train --trace``) give the timeline instead (:mod:`.timeline`)."""
    traces = [name for name in inputs if str(name).endswith(".json")]
    written = timeline.write_timeline(traces, _output_directory(out)) if traces else []
    inputs = [name for name in inputs if name not in traces]
    if not inputs:
        return written
    files = input_files(inputs)
    runs = read_runs(files)
    names = labels(runs)
    _check_not_an_input(Path(out), files)
    directory = _output_directory(out)
    table = directory / TABLE
    try:
        figures = plots.write_figures(runs, names, directory)
        table.write_text(results_markdown(runs, names, plots.figure_names(runs)), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write {error.filename or 'the report'} ({error.strerror})") from None
    return written + figures + [table]


def _check_not_an_input(directory: Path, files) -> None:
    """The report never replaces what it reads (say, ``--out`` a directory holding a ``results.md`` input)."""
    inputs = {file.resolve() for file in files}
    for name in [TABLE, *(name for _, name in plots.figure_names())]:
        if (directory / name).resolve() in inputs:
            raise UsageError(f"--out {directory}: would overwrite the input {directory / name}")


def _output_directory(out) -> Path:
    directory = Path(out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out {out}: exists and is not a directory") from None
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the directory ({error.strerror})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: directory not writable")
    return directory
