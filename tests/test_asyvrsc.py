"""AsyVRSC-Distributed under real mpiexec (ALGORITHMS.md §9.5) and the ``optimize`` command line."""

import pytest
from mpirun import assert_ok, run_prog


@pytest.mark.parametrize("ranks", [3, 4])
def test_distributed_snapshot_is_the_full_gradient(ranks):
    assert_ok(run_prog(ranks, "asyvrsc.py", "snapshot", timeout=60))


def test_one_worker_equals_sequential_svrg_bit_for_bit_and_the_mutation_fails():
    assert_ok(run_prog(2, "asyvrsc.py", "oracle", timeout=60))


@pytest.mark.parametrize("spec,epochs", [("portfolio:pricing", 10), ("portfolio:crspday", 14)])
def test_linear_convergence_with_two_workers_and_bounded_delays(spec, epochs):
    assert_ok(run_prog(3, "asyvrsc.py", "converge", spec, str(epochs), timeout=90))
