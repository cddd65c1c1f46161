"""Swift: mixing weights (doubly stochastic or not, from the spec's formulas), modes and boost under mpiexec.

The weights are computed by the topology code and checked against formulas written
here from ALGORITHMS.md §7 and the official code (GDM/GraphConstruct.py).
"""

import numpy as np
import pytest
from mpirun import assert_ok, run_prog

from mpisgd.gossip.topology import Topology, mixing_matrix, mixing_weights, parse_topology, star


def _clique_ring(cliques, size):
    """The official code's ring of cliques: cliques of `size` ranks, consecutive cliques linked by one edge."""
    edges = [(c * size + a, c * size + b) for c in range(cliques) for a in range(size) for b in range(a + 1, size)]
    edges += [(c * size + size - 1, ((c + 1) % cliques) * size) for c in range(cliques)]
    return Topology.from_edges(cliques * size, edges)


def _random_irregular(p, seed):
    rng = np.random.default_rng(seed)
    while True:
        upper = np.triu(rng.random((p, p)) < 0.4, 1)
        try:
            return Topology(upper | upper.T)
        except Exception:  # disconnected: draw again
            continue


IRREGULAR = [star(5), parse_topology("path", 5), _clique_ring(3, 3), _random_irregular(7, 1),
             _random_irregular(9, 2), parse_topology("regular:3", 8)]


def _metropolis_from_spec(t):
    d = t.adjacency.sum(axis=1)
    w = np.zeros((t.p, t.p))
    for i, j in zip(*np.nonzero(t.adjacency)):
        w[i, j] = 1 / (1 + max(d[i], d[j]))
    return w + np.diag(1 - w.sum(axis=1))


@pytest.mark.parametrize("t", IRREGULAR, ids=lambda t: t.spec)
def test_metropolis_is_doubly_stochastic_and_the_spec_formula(t):
    w = mixing_matrix(t, "metropolis")
    assert np.allclose(w, _metropolis_from_spec(t), atol=1e-14)
    assert np.allclose(w.sum(axis=0), 1) and np.allclose(w.sum(axis=1), 1) and (w >= 0).all()
    for rank in range(t.p):
        assert np.allclose(list(mixing_weights(t, rank, "metropolis").values()), w[rank][w[rank] > 0])


def test_uniform_is_not_doubly_stochastic_off_regular_graphs():
    """The test above would fail with uniform weights: on a star the columns do not sum to one."""
    w = mixing_matrix(star(5), "uniform")
    assert np.allclose(w.sum(axis=1), 1) and abs(w[:, 0].sum() - 1) > 0.5


def test_swift_weights_on_hand_computed_graphs():
    """Degree negotiation (official GraphConstruct.getWeights): the highest-degree ranks give 1/(deg+1)
    to their edges, the others spread what is left over themselves and their remaining neighbours."""
    assert np.allclose(mixing_matrix(star(4), "swift"), _metropolis_from_spec(star(4)))  # centre: 1/4 each
    lollipop = Topology.from_edges(4, [(0, 1), (0, 2), (1, 2), (2, 3)])  # degrees 2, 2, 3, 1
    # rank 2 offers 1/4; ranks 0 and 1 keep (1 - 1/4)/2 = 3/8 for each other; rank 3 gets 1/4
    expected = [[3 / 8, 3 / 8, 1 / 4, 0], [3 / 8, 3 / 8, 1 / 4, 0], [1 / 4, 1 / 4, 1 / 4, 1 / 4], [0, 0, 1 / 4, 3 / 4]]
    w = mixing_matrix(lollipop, "swift")
    assert np.allclose(w, expected, atol=1e-14)
    assert not np.allclose(w, _metropolis_from_spec(lollipop))  # metropolis gives 1/3 to edge 0 - 1
    assert mixing_weights(lollipop, 0, "swift") == pytest.approx({0: 3 / 8, 1: 3 / 8, 2: 1 / 4})


@pytest.mark.parametrize("t", IRREGULAR, ids=lambda t: t.spec)
def test_swift_weights_are_doubly_stochastic_on_these_graphs(t):
    w = mixing_matrix(t, "swift")
    assert np.allclose(w, w.T, atol=1e-14) and np.allclose(w.sum(axis=0), 1) and (w >= 0).all()


def test_swift_weights_are_not_always_doubly_stochastic():
    """Equal-degree neighbours may keep different offers: ranks 0 and 4 (degree 3, one higher-degree
    neighbour 5 offering 1/5) both spread 4/15, but rank 0 lowers its offer to its equal-degree
    neighbour 1's 1/4 (rank 1 has no higher neighbour), so w_04 = 1/4 and w_40 = 4/15."""
    t = Topology.from_edges(6, [(0, 1), (0, 4), (0, 5), (1, 2), (1, 3), (2, 5), (3, 4), (3, 5), (4, 5)])
    w = mixing_matrix(t, "swift")
    assert w[0, 4] == pytest.approx(1 / 4) and w[4, 0] == pytest.approx(4 / 15)
    assert np.allclose(w.sum(axis=1), 1) and not np.allclose(w.sum(axis=0), 1)


def test_swift_weights_modes_and_boost_against_the_spec():
    """4 ranks on a star and a path: consensus value per weights kind, stored models of silent
    neighbours, the weight boost on a controlled arrival pattern, bad options (tests/progs/swift_modes.py)."""
    assert_ok(run_prog(4, "swift_modes.py", timeout=120))
