"""The library inside a user's MPI program: split communicators, the docs/api.md example."""

import re

from mpirun import ROOT, assert_ok, mpiexec, run_prog


def test_two_trainings_on_split_world_match_their_references():
    assert_ok(run_prog(4, "embedding.py", timeout=120))


def test_api_doc_example_runs(tmp_path):
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"<!-- tested example -->\s*```python\n(.*?)```", text, re.S)
    assert blocks, "docs/api.md must hold a tested example"
    for number, code in enumerate(blocks):
        script = tmp_path / f"example{number}.py"
        script.write_text(code)
        result = mpiexec(2, ["-m", "mpi4py", script], timeout=120)
        assert_ok(result, expect="")
        assert result.stdout.strip(), "the example prints its result"
