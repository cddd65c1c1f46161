"""The job scripts without SLURM: the mpirun script trains here, its world-size check catches a
launcher that starts separate worlds, and the sbatch scripts parse and share one launcher.
(tests/test_slurm.py submits them to a real SLURM.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpirun import MPIEXEC, ROOT

JOBS = Path(ROOT, "jobs")
FAMILIES = ("collective", "gossip", "masterworker")


def run_demo(tmp_path, *args, **env):
    environment = {**os.environ, "MPIEXEC": MPIEXEC, "PYTHON": sys.executable,
                   "METRICS": str(tmp_path / "demo.jsonl"), "VENV": "", **env}
    return subprocess.run(["bash", "jobs/demo_mpirun.sh", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=180, start_new_session=True)


def test_mpirun_script_runs_the_demo(tmp_path):
    result = run_demo(tmp_path, "2", "--epochs", "1", "--quiet")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "MPI world size 2 OK" in result.stdout, result.stdout
    assert '"event": "summary"' in (tmp_path / "demo.jsonl").read_text()


def test_world_size_check_stops_separate_worlds(tmp_path):
    """A 'launcher' that starts two independent singleton processes: the check exits 3, no training."""
    fake = tmp_path / "fake-mpiexec"
    fake.write_text('#!/bin/bash\nshift 2\n"$@" & a=$!\n"$@" & b=$!\nwait $a; s=$?\nwait $b || s=$?\nexit $s\n')
    fake.chmod(0o755)
    result = run_demo(tmp_path, "2", "--epochs", "1", MPIEXEC=str(fake))
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert "MPI world has 1 rank(s) but 2 were started" in result.stderr, result.stderr
    assert not (tmp_path / "demo.jsonl").exists()


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.sbatch")) + [JOBS / "launch.sh", JOBS / "demo_mpirun.sh"],
                         ids=lambda path: path.name)
def test_scripts_are_valid_bash(path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _code_and_directives(path):
    """The lines that run or configure the job, with the node count and its words normalised."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("#SBATCH") or
             (line.strip() and not line.startswith("#"))]
    return [re.sub(r"--nodes=\d+", "--nodes=N", line) for line in lines]


@pytest.mark.parametrize("family", FAMILIES)
def test_two_node_script_differs_only_in_its_node_count(family):
    """Only the single-node scripts and one 2-node script run under SLURM in the tests: the other
    2-node scripts must run the same code."""
    one, two = JOBS / f"{family}.sbatch", JOBS / f"{family}-2nodes.sbatch"
    assert "#SBATCH --nodes=1" in one.read_text() and "#SBATCH --nodes=2" in two.read_text()
    assert _code_and_directives(one) == _code_and_directives(two)
    assert 'source "$MPISGD_DIR/jobs/launch.sh"' in one.read_text()
