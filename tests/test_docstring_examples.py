"""Every docstring example of mpisgd runs: ``>>>`` examples of the pure modules as doctests, the
others (complete scripts, most of them MPI programs) under ``mpiexec -n 2 python -m mpi4py``."""

import ast
import doctest
import importlib
import re
import textwrap

import pytest
from mpirun import ROOT, assert_ok, mpiexec

DOCTEST_MODULES = ["mpisgd.arrays", "mpisgd.flat", "mpisgd.gossip.topology", "mpisgd.gossip.topology.graph", "mpisgd.gossip.topology.schedule",
                   "mpisgd.gossip.topology.mixing", "mpisgd.gossip.topology.spec", "mpisgd.comm.backoff",
                   "mpisgd.comm.tags", "mpisgd.comm.throttle", "mpisgd.train.rngs",
                   "mpisgd.comm.activity", "mpisgd.comm.trace"]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def script_examples():
    """(place, code) of every ``Example...::`` block without ``>>>`` in mpisgd's docstrings."""
    found = []
    for path in sorted((ROOT / "mpisgd").rglob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        for node in nodes:
            doc = ast.get_docstring(node, clean=True)
            for match in re.finditer(r"^Example[^\n]*::\n\n((?:[ \t]+[^\n]*\n|\n)+)", (doc or "") + "\n", re.M):
                code = textwrap.dedent(match.group(1))
                if ">>>" not in code:
                    found.append((f"{path.relative_to(ROOT)}:{getattr(node, 'name', 'module')}", code))
    return found


EXAMPLES = script_examples()


def test_examples_are_found():
    assert len(EXAMPLES) >= 5, [place for place, _ in EXAMPLES]


@pytest.mark.parametrize("place,code", EXAMPLES, ids=[place for place, _ in EXAMPLES])
def test_script_example_runs_under_mpiexec(tmp_path, place, code):
    script = tmp_path / "example.py"
    script.write_text(code)
    result = mpiexec(2, ["-m", "mpi4py", script], timeout=180)
    assert_ok(result, expect="")
    assert result.stdout.strip(), f"{place}: the example prints its result\n{result.output}"
