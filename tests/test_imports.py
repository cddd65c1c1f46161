"""Pure modules import without MPI, and ``python -m mpisgd train --help`` works without an MPI runtime."""

import subprocess
import sys

from mpirun import ROOT

PURE = ["mpisgd.errors", "mpisgd.arrays", "mpisgd.flat", "mpisgd.gossip.topology"]


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_pure_modules_do_not_import_mpi4py():
    code = f"import sys\nfor name in {PURE!r}: __import__(name)\nprint(sorted(m for m in sys.modules if m.startswith('mpi4py')))"
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_import_mpisgd_loads_no_mpi_library():
    result = python("import sys, mpisgd\nprint('mpi4py.MPI' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_train_help_without_an_mpi_runtime():
    # sys.modules['mpi4py'] = None makes every import of mpi4py fail, as on a machine without MPI
    code = "import sys\nsys.modules['mpi4py'] = None\nfrom mpisgd.cli import main\nmain(['train', '--help'])"
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert "--algorithm" in result.stdout and "--period" in result.stdout


def test_a_bad_flag_without_an_mpi_runtime_is_a_usage_error():
    code = "import sys\nsys.modules['mpi4py'] = None\nfrom mpisgd.cli import main\nmain(['train', '--epochs', 'x'])"
    result = python(code)
    assert result.returncode == 2
    assert "invalid int value" in result.stderr
