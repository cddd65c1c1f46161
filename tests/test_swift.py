"""Swift: mixing weights (doubly stochastic or not, from the spec's formulas), modes and boost under mpiexec."""

from mpirun import assert_ok, run_prog


def test_swift_weights_modes_and_boost_against_the_spec():
    """4 ranks on a star and a path: consensus value per weights kind, stored models of silent
    neighbours, the weight boost on a controlled arrival pattern, bad options (tests/progs/swift_modes.py)."""
    assert_ok(run_prog(4, "swift_modes.py", timeout=120))
