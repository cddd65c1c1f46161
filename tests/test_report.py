"""``mpisgd report`` on metrics written by real trainings: figures, table, appended and killed runs, errors."""

import json
import subprocess
import sys
from argparse import Namespace

import pytest
from mpirun import BIN, ROOT, mpisgd

from mpisgd.report import report_main
from mpisgd.report.table import format_bytes

FIGURES = ("accuracy_vs_time.png", "accuracy_vs_bytes.png", "loss_vs_time.png", "loss_vs_bytes.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    """Two short real trainings on 2 ranks (sync with a target accuracy, local): their metrics files."""
    directory = tmp_path_factory.mktemp("metrics")
    files = {}
    for algorithm, extra in (("sync", ["--target-accuracy", "0.5"]), ("local", [])):
        path = directory / f"{algorithm}.jsonl"
        result = mpisgd(2, "train", "--algorithm", algorithm, "--epochs", "2", "--seed", "0", "--quiet",
                        "--metrics", path, *extra, timeout=240)
        assert result.returncode == 0, result.output[-3000:]
        files[algorithm] = path
    return files


def lines(path):
    return path.read_text().splitlines(keepends=True)


def summary(path):
    return json.loads(lines(path)[-1])


def report(*args):
    """``python -m mpisgd report ARGS`` in a plain shell (no mpiexec)."""
    return subprocess.run([sys.executable, "-m", "mpisgd", "report", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def table_rows(markdown: str) -> list:
    """The body rows of the results table (the first one), as lists of cells."""
    table = markdown.split("\n\n")[2]  # title, sentence, table (a per-node table may follow)
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # rows[0]: the header


def expected_cells(record: dict) -> list:
    """What the table shows for a summary record: accuracy, time to accuracy, bytes, blocked, wall."""
    target = record["target_accuracy"]
    reached = "—" if target is None else f"{record['time_to_accuracy_s']:.2f} s (target {target:.3f})"
    return [f"{record['final_accuracy']:.4f}", reached, format_bytes(record["bytes_sent"]),
            f"{record['comm_wait_s']:.3f} s", f"{record['wall_s']:.2f} s"]


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 999, 64_580, 6_458_400.0, 2.5e9, None)] == \
        ["0 B", "999 B", "64.58 kB", "6.46 MB", "2.50 GB", "—"]


def test_report_of_two_algorithms(metrics, tmp_path):
    out = tmp_path / "new" / "report"  # created, parents too
    before = {path: path.read_bytes() for path in metrics.values()}
    result = report(metrics["sync"], metrics["local"], "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    printed = result.stdout.split()
    assert sorted(printed) == sorted(str(out / name) for name in (*FIGURES, "results.md"))
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, name
    markdown = (out / "results.md").read_text()
    for name in FIGURES:
        assert f"]({name})" in markdown  # relative references
    rows = table_rows(markdown)
    assert [row[:3] for row in rows] == [["sync", "sync", "2"], ["local", "local", "2"]]
    for row, algorithm in zip(rows, ("sync", "local")):
        assert row[3:8] == expected_cells(summary(metrics[algorithm]))
        assert row[8] == "complete" and row[9] == f"`{metrics[algorithm]}`"
    assert {path: path.read_bytes() for path in metrics.values()} == before  # inputs untouched


def test_appended_and_killed_runs(metrics, tmp_path):
    """A file with two sync runs appended, then a killed one (no summary); a directory as input."""
    runs = tmp_path / "runs"
    runs.mkdir()
    sync = lines(metrics["sync"])
    killed = [line for line in sync if json.loads(line)["event"] != "summary"]
    (runs / "appended.jsonl").write_text("".join(sync + sync + killed))
    (runs / "local.jsonl").write_text("".join(lines(metrics["local"])))
    (runs / "notes.txt").write_text("not a metrics file")  # directories contribute their *.jsonl only
    out = tmp_path / "out"
    assert report_main(Namespace(runs=[runs], out=out)) == 0
    rows = table_rows((out / "results.md").read_text())
    assert [row[0] for row in rows] == ["sync (appended #1)", "sync (appended #2)", "sync (appended #3)", "local"]
    assert rows[0][3:8] == rows[1][3:8] == expected_cells(summary(metrics["sync"]))
    last_epoch = json.loads(killed[-1])
    assert rows[2][3] == f"{last_epoch['accuracy']:.4f}" and rows[2][7] == f"{last_epoch['wall_s']:.2f} s"
    assert rows[2][8].startswith("incomplete") and rows[0][8] == "complete"
    assert rows[2][9] == f"`{runs / 'appended.jsonl'} (run 3 of 3)`"
    assert all((out / name).stat().st_size > 0 for name in FIGURES)


@pytest.mark.parametrize("case", ["missing", "empty", "not-json", "not-a-run", "empty-dir",
                                  "out-under-a-file", "out-is-a-file", "out-holds-an-input"])
def test_bad_input_exits_2_with_one_line(metrics, tmp_path, capsys, case):
    good = metrics["sync"]
    bad = tmp_path / "bad.jsonl"
    out = tmp_path / "out"
    if case == "missing":
        runs, expect = [tmp_path / "nothing.jsonl"], "nothing.jsonl: no such file or directory"
    elif case == "empty":
        bad.write_text("\n")
        runs, expect = [good, bad], "bad.jsonl: no records"
    elif case == "not-json":
        bad.write_text(lines(good)[0] + "{truncated\n")
        runs, expect = [bad], "bad.jsonl, line 2: not JSON"
    elif case == "not-a-run":
        bad.write_text('{"event": "something else"}\n')
        runs, expect = [bad], "bad.jsonl: no training runs"
    elif case == "empty-dir":
        (tmp_path / "empty").mkdir()
        runs, expect = [tmp_path / "empty"], "no *.jsonl files"
    elif case == "out-under-a-file":
        out = good / "report"
        runs, expect = [good], "cannot create the directory"
    elif case == "out-is-a-file":
        out = good
        runs, expect = [good], "exists and is not a directory"
    else:
        out.mkdir()
        (out / "results.md").write_bytes(good.read_bytes())
        runs, expect = [out / "results.md"], "would overwrite the input"
    before = {path: path.read_bytes() for path in (good, *runs) if path.is_file()}
    assert report_main(Namespace(runs=runs, out=out)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mpisgd report: error: ") and expect in captured.err
    assert captured.err.count("\n") == 1
    assert {path: path.read_bytes() for path in before} == before  # inputs untouched
    assert not out.is_dir() or not any(out.glob("*.png"))  # nothing written on bad input
    assert case.startswith("out-") or not out.exists()  # not even the directory


def test_bad_input_from_the_console_script(tmp_path):
    """The ``mpisgd`` script in a plain shell: status 2, one line, no traceback (here: a line that is not JSON)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    result = subprocess.run([str(BIN / "mpisgd"), "report", str(bad), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"mpisgd report: error: {bad}, line 1: not JSON\n"
    assert result.stdout == ""
