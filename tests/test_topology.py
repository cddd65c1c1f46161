"""Topologies as data (mpisgd.gossip.topology): graphs, mixing weights, spec parsing. No MPI."""

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mpisgd.errors import UsageError
from mpisgd.gossip import topology as topo
from mpisgd.gossip.topology import (TimeVaryingTopology, Topology, bipartite, check_mixing_matrix, exponential,
                                    mixing_matrix, mixing_weights, one_peer_exponential, one_peer_hypercube,
                                    parse_topology, random_regular, ring, spectral_gap, stationary_distribution,
                                    torus)

SIZES = (1, 2, 4, 8, 9, 16)

# spec -> expected degree of every rank as a function of p (None: not valid for that p)
STATIC = {
    "ring": lambda p: min(p - 1, 2),
    "torus": lambda p: {1: 0, 9: 4, 16: 4}.get(p),
    "exponential": lambda p: math.ceil(math.log2(p)) if p > 1 else 0,
    "exponential:undirected": lambda p: {1: 0, 2: 1, 4: 3, 8: 5, 9: 6, 16: 7}[p],
    "regular:3": lambda p: 3 if p in (4, 8, 16) else None,
    "regular:4": lambda p: 4 if p in (8, 9, 16) else None,
    "full": lambda p: p - 1,
    "bipartite": lambda p: None,  # degrees checked in test_bipartite
    "bipartite:complete": lambda p: None,
}
CASES = [(spec, p) for spec in STATIC for p in SIZES
         if STATIC[spec](p) is not None or (spec.startswith("bipartite") and p >= 2)]
CASES += [("torus:2x2", 4), ("torus:2x4", 8), ("torus:1x9", 9), ("torus:4x2", 8)]
SCHEDULES = [(spec, p) for spec in ("one-peer-exponential", "one-peer-hypercube") for p in SIZES
             if spec == "one-peer-exponential" or p & (p - 1) == 0]


def _symmetric(t):
    return np.array_equal(t.adjacency, t.adjacency.T)


# -- graphs -------------------------------------------------------------------
@pytest.mark.parametrize("spec,p", CASES)
def test_static_topology_is_well_formed(spec, p):
    t = parse_topology(spec, p, seed=0)
    assert isinstance(t, Topology) and t.p == p and not t.time_varying
    a = t.adjacency
    assert a.shape == (p, p) and a.dtype == bool and not a.diagonal().any()
    assert not a.flags.writeable
    assert t.is_connected()
    assert _symmetric(t) == (not t.directed) or p <= 2
    for i in range(p):
        assert t.neighbors(i) == sorted(np.flatnonzero(a[i]).tolist())
        assert t.in_neighbors(i) == sorted(np.flatnonzero(a[:, i]).tolist())
        assert t.degree(i) == len(t.neighbors(i))
    expected = STATIC.get(spec, lambda p: None)(p)
    if expected is not None:
        assert t.degrees().tolist() == [expected] * p, spec
        assert t.is_regular()
    # describe() is JSON-able and reproducible (what the start-up agreement compares)
    described = t.describe()
    assert json.loads(json.dumps(described)) == described
    assert described == parse_topology(spec, p, seed=0).describe()
    assert described["p"] == p and described["spec"] == t.spec


def test_small_cases():
    assert ring(1).neighbors(0) == [] and ring(1).degree(0) == 0
    assert ring(2).edges() == [(0, 1)]
    assert ring(5).neighbors(0) == [1, 4]
    assert parse_topology("full", 1).neighbors(0) == []
    assert parse_topology("torus", 1).spec == "torus:1x1"
    assert parse_topology("exponential", 8).neighbors(3) == [4, 5, 7]
    assert parse_topology("exponential", 8).in_neighbors(3) == [1, 2, 7]


def test_torus_shape_and_degenerate_sides():
    assert parse_topology("torus", 12).spec == "torus:3x4"
    assert parse_topology("torus", 36).spec == "torus:6x6"
    assert parse_topology("torus", 9).neighbors(4) == [1, 3, 5, 7]
    assert parse_topology("torus", 9).neighbors(0) == [1, 2, 3, 6]
    assert torus(8, 2, 4).degrees().tolist() == [3] * 8  # side 2: one neighbour vertically
    assert torus(4, 2, 2).edges() == [(0, 1), (0, 2), (1, 3), (2, 3)]  # the 4-cycle 0-1-3-2
    assert np.array_equal(torus(7, 1, 7).adjacency, ring(7).adjacency)  # side 1: a ring


def test_exponential_directed_and_undirected():
    d = exponential(16)
    assert d.directed and d.is_regular() and not _symmetric(d)
    assert d.neighbors(0) == [1, 2, 4, 8] and d.in_neighbors(0) == [8, 12, 14, 15]
    u = exponential(16, directed=False)
    assert not u.directed and _symmetric(u) and u.neighbors(0) == [1, 2, 4, 8, 12, 14, 15]
    assert np.array_equal(u.adjacency, d.adjacency | d.adjacency.T)


@pytest.mark.parametrize("p", [2, 3, 4, 8, 9, 16])
def test_bipartite(p):
    evens, odds = list(range(0, p, 2)), list(range(1, p, 2))
    for complete in (False, True):
        t = bipartite(p, complete=complete)
        assert t.is_bipartite() and t.is_connected() and _symmetric(t)
        assert t.parts() == (evens, odds)
        for i, j in t.edges():
            assert i % 2 != j % 2
        for i in evens:  # every active rank has passive neighbours only
            assert t.neighbors(i) and all(j % 2 == 1 for j in t.neighbors(i))
        if complete:
            assert all(t.neighbors(i) == odds for i in evens)
    sparse = bipartite(p)
    if p % 2 == 0:
        assert np.array_equal(sparse.adjacency, ring(p).adjacency)
    else:  # the path 0 - 1 - ... - (p-1)
        assert sparse.edges() == [(i, i + 1) for i in range(p - 1)]


def test_bipartite_detection_on_other_graphs():
    assert ring(8).is_bipartite() and ring(8).parts() == ([0, 2, 4, 6], [1, 3, 5, 7])
    assert not ring(9).is_bipartite()
    with pytest.raises(UsageError, match="not bipartite"):
        ring(9).parts()
    assert torus(16).is_bipartite() and not torus(9).is_bipartite()
    assert not parse_topology("full", 3).is_bipartite()
    assert ring(1).is_bipartite() and ring(1).parts() == ([0], [])


def test_random_regular_is_seeded():
    a, b, c = (random_regular(32, 5, seed) for seed in (7, 7, 8))
    assert np.array_equal(a.adjacency, b.adjacency) and a.describe() == b.describe()
    assert not np.array_equal(a.adjacency, c.adjacency) and a.describe()["sha256"] != c.describe()["sha256"]
    assert a.describe()["params"] == {"degree": 5, "seed": 7}
    for p, d in [(2, 1), (3, 2), (10, 2), (10, 7), (10, 9), (64, 3), (200, 6)]:
        t = random_regular(p, d, seed=1)
        assert t.is_regular() and t.degree(0) == d and t.is_connected() and _symmetric(t)


def test_custom_topology_checks():
    square = Topology.from_edges(4, [(0, 1), (1, 2), (2, 3), (3, 0)], name="square")
    assert square.neighbors(0) == [1, 3] and square.is_bipartite()
    with pytest.raises(UsageError, match="self loop at rank 1"):
        Topology.from_edges(3, [(0, 1), (1, 1), (1, 2)])
    with pytest.raises(UsageError, match="not symmetric: edge 0-1"):
        Topology(np.array([[0, 1], [0, 0]]))
    with pytest.raises(UsageError, match="disconnected: rank 0 cannot reach ranks \\[2, 3\\]"):
        Topology.from_edges(4, [(0, 1), (2, 3)])
    with pytest.raises(UsageError, match="not strongly connected"):
        Topology(np.array([[0, 1], [0, 0]]), directed=True)
    assert not Topology.from_edges(4, [(0, 1)], require_connected=False).is_connected()
    with pytest.raises(UsageError, match="square"):
        Topology(np.zeros((2, 3), dtype=bool))
    with pytest.raises(UsageError, match="p >= 1"):
        Topology(np.zeros((0, 0), dtype=bool))
    with pytest.raises(UsageError, match="0/1"):
        Topology(np.array([[0, 2], [2, 0]]))
    with pytest.raises(UsageError, match="rank must be"):
        Topology.from_edges(2, [(0, 2)])
    with pytest.raises(UsageError, match="not a bipartition"):
        Topology(ring(3).adjacency, parts=([0, 2], [1]))
    with pytest.raises(UsageError, match="rank must be"):
        ring(4).neighbors(4)


# -- mixing weights -----------------------------------------------------------
def _all_topologies():
    for spec, p in CASES:
        yield parse_topology(spec, p, seed=0)
    for spec, p in SCHEDULES:
        schedule = parse_topology(spec, p)
        for step in range(schedule.period):
            yield schedule.at(step)


@pytest.mark.parametrize("kind", ["uniform", "metropolis"])
def test_mixing_matrices_are_stochastic(kind):
    for t in _all_topologies():
        if kind == "metropolis" and not _symmetric(t):
            with pytest.raises(UsageError, match="metropolis weights need an undirected graph"):
                mixing_matrix(t, kind)
            continue
        w = mixing_matrix(t, kind)
        assert w.shape == (t.p, t.p) and w.dtype == np.float64
        assert (w >= 0).all() and np.allclose(w.sum(axis=1), 1, atol=1e-13)
        receives = t.adjacency.T | np.eye(t.p, dtype=bool)
        assert (w[~receives] == 0).all() and (w[receives] > 0).all()
        if kind == "metropolis":
            assert np.allclose(w, w.T) and np.allclose(w.sum(axis=0), 1, atol=1e-13)
        else:
            assert np.allclose(w[receives], (1 / (t.adjacency.sum(axis=0) + 1))[:, None].repeat(t.p, 1)[receives])
            if t.is_regular():
                assert np.allclose(w.sum(axis=0), 1, atol=1e-13)
        for rank in range(t.p):
            row = mixing_weights(t, rank, kind)
            assert list(row) == sorted(t.in_neighbors(rank) + [rank])
            assert np.allclose([row[j] for j in row], w[rank, list(row)])


def test_metropolis_formula_on_irregular_graph():
    path = bipartite(3)  # 0 - 1 - 2, degrees 1, 2, 1
    w = mixing_matrix(path, "metropolis")
    third = 1 / 3
    assert np.allclose(w, [[1 - third, third, 0], [third, third, third], [0, third, 1 - third]])
    u = mixing_matrix(path, "uniform")
    assert np.allclose(u, [[0.5, 0.5, 0], [third, third, third], [0, 0.5, 0.5]])
    assert not np.allclose(u.sum(axis=0), 1)  # uniform is not doubly stochastic off regular graphs


CONSENSUS = [(spec, p) for spec, p in CASES if p in (4, 8, 9, 16)]


@pytest.mark.parametrize("spec,p", CONSENSUS)
def test_powers_of_w_reach_consensus(spec, p):
    t = parse_topology(spec, p, seed=0)
    x = np.random.default_rng(p).normal(size=(p, 3))
    for kind in ("uniform", "metropolis"):
        if kind == "metropolis" and not _symmetric(t):
            continue
        w = mixing_matrix(t, kind)
        limit = np.linalg.matrix_power(w, 1 << 14) @ x
        pi = stationary_distribution(w)
        assert np.allclose(pi @ w, pi) and np.isclose(pi.sum(), 1) and (pi > 0).all()
        assert np.allclose(limit, pi @ x, atol=1e-9)  # every rank holds the W-stationary consensus
        if kind == "metropolis" or t.is_regular():  # doubly stochastic: the mean
            assert np.allclose(pi, 1 / p) and np.allclose(limit, x.mean(axis=0), atol=1e-9)
        elif not t.directed:  # uniform on an undirected graph: pi proportional to degree + 1
            assert np.allclose(pi, (t.degrees() + 1) / (t.degrees() + 1).sum())


def test_spectral_gap():
    assert spectral_gap(mixing_matrix(parse_topology("full", 8), "uniform")) == pytest.approx(1)
    assert spectral_gap(np.ones((1, 1))) == 1.0
    for p in (4, 8, 16, 32):
        expected = 1 - (1 + 2 * math.cos(2 * math.pi / p)) / 3  # ring with weights 1/3
        assert spectral_gap(mixing_matrix(ring(p), "metropolis")) == pytest.approx(expected)
    gaps = [spectral_gap(mixing_matrix(parse_topology(s, 16), "metropolis")) for s in ("ring", "torus", "full")]
    assert gaps == sorted(gaps)  # better connected mixes faster
    disconnected = mixing_matrix(one_peer_exponential(8), "uniform", step=1)  # i -> i + 2: two cycles
    assert spectral_gap(disconnected) == pytest.approx(0, abs=1e-12)


def test_check_mixing_matrix():
    t = ring(4)
    good = mixing_matrix(t, "metropolis")
    assert check_mixing_matrix(good, t, doubly_stochastic=True) is not None
    with pytest.raises(UsageError, match="negative weight"):
        check_mixing_matrix([[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(UsageError, match="row 1 sums to"):
        check_mixing_matrix([[1, 0], [0.5, 0.6]])
    with pytest.raises(UsageError, match="column 0 sums to"):
        check_mixing_matrix([[1, 0], [1, 0]], doubly_stochastic=True)
    with pytest.raises(UsageError, match=r"w\[0, 2\] but rank 2 does not send to rank 0"):
        check_mixing_matrix(np.full((4, 4), 0.25), t)
    with pytest.raises(UsageError, match="square"):
        check_mixing_matrix(np.ones(3))
    with pytest.raises(UsageError, match="unknown mixing weights 'max'"):
        mixing_matrix(t, "max")


# -- time-varying schedules ---------------------------------------------------
@pytest.mark.parametrize("p", SIZES)
def test_one_peer_exponential_schedule(p):
    s = parse_topology("one-peer-exponential", p)
    assert isinstance(s, TimeVaryingTopology) and s.time_varying and s.is_connected()
    period = math.ceil(math.log2(p)) if p > 1 else 1
    assert s.period == period
    distances = set()
    for t in range(3 * period):
        for i in range(p):
            peers = s.peers(i, t)
            if p == 1:
                assert peers == []
                continue
            assert peers == s.neighbors(i, t) == [(i + 2 ** (t % period)) % p]
            assert s.in_neighbors(i, t) == [(i - 2 ** (t % period)) % p]
            assert s.degree(i, t) == 1
            distances.add((peers[0] - i) % p)
    if p > 1:  # one period covers every distance of the exponential graph
        assert distances == {2 ** k for k in range(period)}
        assert np.array_equal(s.union().adjacency, exponential(p).adjacency)
    described = s.describe()
    assert json.loads(json.dumps(described)) == described and described["period"] == period
    assert s.at(period) is s.at(0)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_one_peer_schedules_average_exactly_in_one_period_for_powers_of_two(p):
    for spec, kind in (("one-peer-exponential", "uniform"), ("one-peer-hypercube", "metropolis")):
        s = parse_topology(spec, p)
        product = np.eye(p)
        for step in range(s.period):
            product = mixing_matrix(s, kind, step=step) @ product
        assert np.allclose(product, np.full((p, p), 1 / p), atol=1e-14), spec


def test_one_peer_exponential_converges_for_other_p():
    s = one_peer_exponential(9)
    x = np.arange(9.0)
    for step in range(40 * s.period):
        x = mixing_matrix(s, "uniform", step=step) @ x
    assert np.allclose(x, 4.0)  # doubly stochastic every step: the mean


def test_one_peer_hypercube():
    s = one_peer_hypercube(8)
    assert [s.peers(5, t) for t in range(4)] == [[4], [7], [1], [4]]
    assert not s.directed and s.union().is_regular() and s.union().degree(0) == 3
    with pytest.raises(UsageError, match="power of two"):
        one_peer_hypercube(6)


def test_schedule_needs_a_step():
    s = one_peer_exponential(4)
    with pytest.raises(UsageError, match="time-varying topology: pass the step"):
        s.neighbors(0)
    with pytest.raises(UsageError, match="pass step="):
        mixing_matrix(s, "uniform")
    with pytest.raises(UsageError, match="non-negative integer"):
        s.peers(0, -1)
    assert ring(4).peers(0, 7) == ring(4).neighbors(0) == [1, 3]  # a fixed graph ignores the step
    with pytest.raises(UsageError, match="disconnected"):
        TimeVaryingTopology([Topology.from_edges(4, [(0, 1)], require_connected=False)])


# -- spec parsing -------------------------------------------------------------
def test_spec_forms():
    assert parse_topology(" Ring ", 4).spec == "ring"
    assert parse_topology("torus:3X4", 12).params == {"rows": 3, "cols": 4}
    assert parse_topology("exponential:directed", 8).directed
    assert not parse_topology("exponential:undirected", 8).directed
    assert parse_topology("one_peer_exponential", 8).spec == "one-peer-exponential"
    assert parse_topology("regular:3", 8, seed=5).params == {"degree": 3, "seed": 5}
    assert set(topo.TOPOLOGY_SPECS) >= {"ring", "torus", "torus:RxC", "exponential", "regular:D", "full",
                                        "bipartite", "one-peer-exponential"}


@pytest.mark.parametrize("spec,p,message", [
    ("hexagon", 4, "unknown topology 'hexagon'; choose from ring"),
    ("", 4, "non-empty string"),
    (None, 4, "non-empty string"),
    ("ring:3", 4, "ring takes no argument"),
    ("full:x", 4, "full takes no argument"),
    ("torus", 8, "p=8 has no factorization rows x cols with both sides >= 3.*torus:2x4"),
    ("torus", 7, "p=7 has no factorization.*torus:1x7"),
    ("torus:2x2", 8, "2x2 = 4 ranks, but p=8"),
    ("torus:3x", 9, "expected torus:RxC"),
    ("torus:0x4", 4, "sides must be positive"),
    ("exponential:both", 8, "exponential:undirected"),
    ("regular", 8, "regular needs a degree"),
    ("regular:x", 8, "regular needs a degree"),
    ("regular:3", 9, "p \\* degree = 27 is odd"),
    ("regular:8", 8, "degree must be between 1 and p - 1 = 7"),
    ("regular:0", 8, "degree must be between 1"),
    ("regular:1", 4, "perfect matching, which is disconnected"),
    ("regular:1", 1, "single rank has no neighbours"),
    ("bipartite", 1, "needs p >= 2"),
    ("bipartite:random", 4, "expected bipartite or bipartite:complete"),
    ("one-peer-hypercube", 6, "power of two"),
    ("ring", 0, "p >= 1"),
    ("ring", -2, "p >= 1"),
    ("ring", 2.0, "p >= 1"),
    ("ring", True, "p >= 1"),
])
def test_bad_specs(spec, p, message):
    with pytest.raises(UsageError, match=message):
        parse_topology(spec, p)


def test_bad_seed():
    with pytest.raises(UsageError, match="seed must be a non-negative integer"):
        parse_topology("regular:3", 8, seed=-1)


def test_usage_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_topology("nope", 4)


def test_topology_code_does_not_import_mpi_or_torch():
    package = Path(topo.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.split(".")[0] in ("mpi4py", "torch", "cupy"), (source.name, name)
