"""``mpisgd report``: plots and a Markdown table from ``mpisgd train --metrics`` files.

Reading (:mod:`.runs`) and the table (:mod:`.table`) use the standard
library only; matplotlib is imported by :mod:`.plots` when figures are drawn,
so importing this package stays cheap. Not to be confused with
:mod:`mpisgd.bench.report` (the benchmarks' JSON reports).
"""

from .command import add_report_command, report_main, write_report
from .runs import Run, input_files, labels, read_runs

__all__ = ["Run", "add_report_command", "input_files", "labels", "read_runs", "report_main", "write_report"]
