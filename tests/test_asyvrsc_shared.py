"""AsyVRSC-Shared and the shared-memory window, under real mpiexec (programs in progs/asyvrsc_shared.py)."""

import pytest

from mpirun import assert_mutation_fails, assert_ok, run_prog

PROG = "asyvrsc_shared.py"


@pytest.mark.parametrize("ranks", [2, 3])
def test_window_sees_writes_and_atomic_adds_are_exact(ranks):
    result = run_prog(ranks, PROG, "window")
    assert_ok(result)
    assert "raw adds lost:" in result.stdout


def test_one_rank_equals_sequential_svrg_bit_for_bit():
    assert_ok(run_prog(1, PROG, "sequential"))


def test_two_ranks_converge_linearly_raw_and_atomic():
    result = run_prog(2, PROG, "converge", timeout=120)
    assert_ok(result)
    assert result.stdout.count("epochs to") == 4, result.stdout


def test_ranks_on_several_nodes_are_refused_on_every_rank():
    # MPICH's own switch: each rank its own "node", so COMM_TYPE_SHARED gives single-rank communicators
    result = run_prog(2, PROG, "nodes", env={"MPIR_CVAR_NUM_CLIQUES": "2"})
    assert_ok(result)
    if "SKIP" not in result.stdout:
        for rank in (0, 1):
            assert result.stdout.count(f"REFUSED on rank {rank}: ") == 2, result.stdout
        assert "needs every rank on one node" in result.stdout


def test_oracle_recomputes_every_update_from_its_recorded_read():
    """progs/oracle_asyvrsc_shared.py: every rank's reads and adds are recorded (atomic mode, rank-dependent
    sleeps); the numpy reference (§9, seeds reproduced, not imported) recomputes every update from its read
    and the snapshot, and the shared x must equal x0 - eta sum v (1e-10). With the adds a no-op it fails."""
    assert_ok(run_prog(2, "oracle_asyvrsc_shared.py", timeout=90))
    assert_mutation_fails(run_prog(2, "oracle_asyvrsc_shared.py", "--mutate", timeout=90),
                          "differs from the reference")
