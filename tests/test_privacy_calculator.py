"""``python -m mpisgd privacy``: JSON answers, one-line errors with status 2, and no MPI needed."""

import json
import subprocess
import sys

import pytest
from mpirun import ROOT

from mpisgd.cli import build_parser
from mpisgd.privacy.calculator import privacy_main

pytest.importorskip("opacus")
pytest.importorskip("dp_accounting")

SCHEDULE = ["--q", "0.04", "--steps", "2250", "--delta", "1e-5"]


def privacy(*args) -> subprocess.CompletedProcess:
    """``python -m mpisgd privacy ARGS`` in a plain shell (no mpiexec)."""
    return subprocess.run([sys.executable, "-m", "mpisgd", "privacy", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_epsilon_as_json():
    result = privacy(*SCHEDULE, "--sigma", "1.5")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert list(answer) == ["epsilon"] and answer["epsilon"] == pytest.approx(7.3291111714, abs=1e-6)


def test_noise_multiplier_as_json_without_an_mpi_runtime():
    # sys.modules['mpi4py'] = None makes every import of mpi4py fail, as on a machine without MPI
    code = ("import sys\nsys.modules['mpi4py'] = None\nfrom mpisgd.cli import main\n"
            f"sys.exit(main(['privacy', *{SCHEDULE!r}, '--epsilon', '8']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert list(answer) == ["noise_multiplier", "epsilon"]
    assert round(answer["noise_multiplier"], 3) == 1.416 and 7.99 <= answer["epsilon"] <= 8.0


def test_a_bad_request_is_one_line_and_status_2():
    result = privacy(*SCHEDULE, "--sigma", "1.5", "--epsilon", "8")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "mpisgd privacy: error: give exactly one of --sigma (to get epsilon) and --epsilon (to get the noise multiplier)"]


def run_in_process(capsys, *args):
    code = privacy_main(build_parser().parse_args(["privacy", *args]))
    return code, capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (SCHEDULE, "give exactly one of --sigma"),
    (["--q", "0", "--steps", "10", "--delta", "1e-5", "--sigma", "1"], "q must be in (0, 1]"),
    (["--q", "1.5", "--steps", "10", "--delta", "1e-5", "--sigma", "1"], "q must be in (0, 1]"),
    (["--q", "0.1", "--steps", "10", "--delta", "1", "--sigma", "1"], "delta must be in (0, 1)"),
    (["--q", "0.1", "--steps", "10", "--delta", "0", "--epsilon", "1"], "delta must be in (0, 1)"),
    (["--q", "0.1", "--steps", "0", "--delta", "1e-5", "--sigma", "1"], "steps must be an integer >= 1"),
    (["--q", "0.1", "--steps", "10", "--delta", "1e-5", "--sigma", "-1"], "noise multiplier sigma must be positive"),
    (["--q", "0.1", "--steps", "10", "--delta", "1e-5", "--epsilon", "-1"], "target epsilon must be positive"),
])
def test_bad_input(capsys, args, message):
    code, output = run_in_process(capsys, *args)
    assert code == 2 and output.out == ""
    lines = output.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpisgd privacy: error: ") and message in lines[0]


def test_pld_in_process(capsys):
    code, output = run_in_process(capsys, *SCHEDULE, "--sigma", "1.5", "--accountant", "pld")
    assert code == 0 and json.loads(output.out) == {"epsilon": pytest.approx(6.7687873739, abs=1e-6)}
