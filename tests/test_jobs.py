"""The job scripts: the mpirun script runs the demo here; the sbatch script parses."""

import os
import subprocess
import sys
from pathlib import Path

from mpirun import MPIEXEC, ROOT


def test_mpirun_script_runs_the_demo(tmp_path):
    metrics = tmp_path / "demo.jsonl"
    env = dict(os.environ, MPIEXEC=MPIEXEC, PYTHON=sys.executable, METRICS=str(metrics), VENV="")
    result = subprocess.run(["bash", "jobs/demo_mpirun.sh", "2", "--epochs", "1", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180, start_new_session=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert '"event": "summary"' in metrics.read_text()


def test_sbatch_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(Path(ROOT, "jobs", "demo.sbatch"))], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
