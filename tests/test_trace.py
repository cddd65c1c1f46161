"""Timelines (``--trace PATH``): each rank's Chrome trace of a real run, and ``mpisgd report``'s picture of it."""

import json
import subprocess
import sys

from mpirun import ROOT, mpiexec, mpisgd

from mpisgd.comm.trace import Recorder, rank_path

CATEGORIES = {"compute", "comm-post", "wait", "progress"}


def test_two_rank_trace_and_its_timeline(tmp_path):
    # CoCoD-SGD: its all-reduce runs while the next steps compute, tested (progress calls) on the way;
    # a generous --stall-timeout on top: a run that progresses ends normally with the watchdog on
    result = mpisgd(2, "train", "--algorithm", "cocod", "--epochs", 1, "--quiet", "--trace", tmp_path / "t.json",
                    "--stall-timeout", 120, "--metrics", tmp_path / "m.jsonl", timeout=120)
    assert result.returncode == 0, result.output[-3000:]
    paths = [tmp_path / "t.rank0.json", tmp_path / "t.rank1.json"]
    start = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    for rank, path in enumerate(paths):
        document = json.loads(path.read_text())
        events = [e for e in document["traceEvents"] if e["ph"] in ("X", "i")]
        assert {e["pid"] for e in document["traceEvents"]} == {rank}
        assert {e["cat"] for e in events} == CATEGORIES, path
        names = {(e["cat"], e["name"]) for e in events}
        assert {("compute", "forward"), ("compute", "backward"), ("compute", "optimizer step"),
                ("comm-post", "Iallreduce"), ("progress", "Test")} <= names
        assert any(cat == "wait" and name in ("Wait", "Allreduce") for cat, name in names)
        steps = sum(e["name"] == "forward" for e in events)
        assert steps == start["steps_per_epoch"]  # one forward per local step
        assert all(e["dur"] >= 0 for e in events if e["ph"] == "X")
        assert document["otherData"] == {"rank": rank, "events": len(events), "dropped_events": 0}
    out = tmp_path / "figs"
    report = subprocess.run([sys.executable, "-m", "mpisgd", "report", *paths, "--out", out], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert report.stdout.split() == [str(out / "timeline.png"), str(out / "timeline.json")]
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = json.loads((out / "timeline.json").read_text())
    assert {e["pid"] for e in merged["traceEvents"]} == {0, 1}


def test_report_refuses_a_json_that_is_no_trace(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}')
    report = subprocess.run([sys.executable, "-m", "mpisgd", "report", bad, "--out", tmp_path], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 2
    assert report.stderr.strip().splitlines() == [f"mpisgd report: error: {bad}: not a trace file of "
                                                  "'mpisgd train --trace' (no traceEvents)"]


def test_trace_keeps_at_most_its_limit_and_says_so(tmp_path):
    recorder = Recorder(3, limit=4)
    for i in range(10):
        recorder.span("forward", "compute", float(i), i + 0.5)
    path = recorder.write(tmp_path / "capped.json")
    assert path == tmp_path / "capped.rank3.json"
    document = json.loads(path.read_text())
    assert sum(e.get("name") == "forward" for e in document["traceEvents"]) == 4
    assert document["otherData"]["dropped_events"] == 6
    assert "limit of 4 events" in document["otherData"]["note"]
    assert any(e["name"] == "trace full" for e in document["traceEvents"])


def test_rank_path():
    assert str(rank_path("runs/t.json", 0)) == "runs/t.rank0.json"
    assert str(rank_path("runs/t", 12)) == "runs/t.rank12.json"
    assert str(rank_path("a.b/trace.json", 1)) == "a.b/trace.rank1.json"


def test_overhead_benchmark_smoke(tmp_path):
    """``python -m mpisgd.bench trace --quick``: its JSON holds both variants and the ratio (no timing asserted)."""
    path = tmp_path / "trace.json"
    result = mpiexec(2, ["-m", "mpisgd.bench", "trace", "--quick", "--ranks", 2, "--json", path], timeout=120)
    assert result.returncode == 0, result.output[-3000:]
    report = json.loads(path.read_text())
    assert set(report["results"]) == {"off", "trace"} and "digits" in report["ratios"]["trace_over_off"]
    assert report["results"]["trace"]["events_per_step"] >= 5  # forward, backward, step, Iallreduce, Wait
