"""Mixing (gossip averaging) weights on a topology, and spectral helpers.

A mixing matrix ``W`` acts as ``x_new = W @ x``: row ``i`` holds the weights
rank ``i`` gives to itself and to the ranks it *receives from* (its
in-neighbours), so every row sums to 1 (row-stochastic, nonnegative).

- ``uniform``: ``w_ij = 1 / (d_i + 1)`` for ``j = i`` and every in-neighbour
  ``j`` (``d_i``: in-degree). Row-stochastic; doubly stochastic only when every
  rank has the same degree (regular graphs, e.g. ring, torus, exponential, full).
- ``metropolis`` (Metropolis-Hastings): ``w_ij = 1 / (1 + max(d_i, d_j))`` on
  every edge, ``w_ii = 1 - sum_j w_ij``. Symmetric and doubly stochastic on any
  undirected graph, so gossip with it preserves the global mean.
- ``swift``: Swift's degree negotiation (:func:`swift_matrix`), reconstructed from
  the official code (GDM/GraphConstruct.py, ``weight_type='swift'``). Row-stochastic;
  doubly stochastic when symmetric, which holds unless two linked ranks of equal
  degree end up offering different weights (checked, not assumed: see the docs).

Example::

    >>> from mpisgd.gossip.topology import ring, mixing_matrix, spectral_gap
    >>> W = mixing_matrix(ring(8), "metropolis")
    >>> round(spectral_gap(W), 4)
    0.1953
"""

from typing import Optional

import numpy as np

from ...errors import UsageError

MIXING_KINDS = ("uniform", "metropolis", "swift")
_UNDIRECTED_ONLY = ("metropolis", "swift")


def _graph(topology, step):
    if getattr(topology, "time_varying", False):
        if step is None:
            raise UsageError(f"{topology.spec} is a time-varying topology: pass step= to get its mixing weights")
        return topology.at(step)
    return topology


def _check_kind(kind: str, graph) -> None:
    if kind not in MIXING_KINDS:
        raise UsageError(f"unknown mixing weights {kind!r}; choose from {', '.join(MIXING_KINDS)}")
    if kind in _UNDIRECTED_ONLY and not graph.is_symmetric():
        raise UsageError(f"{kind} weights need an undirected graph; {graph.spec} is directed (use uniform)")


def mixing_matrix(topology, kind: str = "metropolis", *, step: Optional[int] = None) -> np.ndarray:
    """The ``p x p`` float64 mixing matrix of ``topology`` (of its graph at ``step`` when time-varying)."""
    graph = _graph(topology, step)
    _check_kind(kind, graph)
    receives = graph.adjacency.T.astype(np.float64)  # receives[i, j] = 1: j sends to i
    if kind == "uniform":
        weights = (receives + np.eye(graph.p)) / (receives.sum(axis=1) + 1)[:, None]
    elif kind == "swift":
        return check_mixing_matrix(swift_matrix(graph), graph)
    else:
        degree = receives.sum(axis=1)
        weights = receives / (1 + np.maximum(degree[:, None], degree[None, :]))
        weights[np.diag_indices(graph.p)] = 1 - weights.sum(axis=1)
    return check_mixing_matrix(weights, graph, doubly_stochastic=kind == "metropolis")


def mixing_weights(topology, rank: int, kind: str = "metropolis", *, step: Optional[int] = None) -> dict:
    """Row ``rank`` of :func:`mixing_matrix` as ``{rank: w_ii, j: w_ij, ...}`` over self and in-neighbours.

    Costs O(degree) rather than O(p^2) (``swift``: O(p^2), the negotiation spans the graph).
    """
    graph = _graph(topology, step)
    _check_kind(kind, graph)
    sources = graph.in_neighbors(rank)
    if kind == "swift":
        row = mixing_matrix(graph, kind)[rank]
        return {j: float(row[j]) for j in sorted(sources + [rank])}
    if kind == "uniform":
        weights = {j: 1.0 / (len(sources) + 1) for j in sources + [rank]}
    else:
        weights = {j: 1.0 / (1 + max(len(sources), graph.in_degree(j))) for j in sources}
        weights[rank] = 1.0 - sum(weights.values())
    return dict(sorted(weights.items()))


def swift_matrix(graph) -> np.ndarray:
    """Swift's degree-negotiated weights on an undirected graph (official code, ``weight_type='swift'``).

    The ranks settle their edges from the highest degree down. Rank ``i`` of degree
    ``d_i`` first takes, for each higher-degree neighbour ``j``, the weight ``o_j`` that
    ``j`` offered; it then spreads what is left uniformly over itself and its other
    neighbours, ``u_i = (1 - sum_{j higher} o_j) / (#other neighbours + 1)``; a rank
    with an equal-degree neighbour and at least one higher one lowers its offer to
    the smallest ``u`` among itself and its equal-degree neighbours (a rank with no
    higher neighbour keeps ``1/(d_i + 1)``). It gives ``o_i`` to every equal- or
    lower-degree neighbour and ``w_ii = 1 - sum_j w_ij`` to itself. Not guaranteed
    symmetric: linked equal-degree ranks may keep different offers.
    """
    adjacency = np.asarray(graph.adjacency, dtype=bool)
    degree = adjacency.sum(axis=1)
    spread, offer = np.zeros(graph.p), np.zeros(graph.p)  # u_i and o_i
    weights = np.zeros((graph.p, graph.p))
    for level in sorted(set(degree.tolist()), reverse=True):
        ranks = np.flatnonzero(degree == level)
        for i in ranks:
            higher = adjacency[i] & (degree > level)
            spread[i] = (1 - offer[higher].sum()) / (level - higher.sum() + 1)
        for i in ranks:
            higher, same = adjacency[i] & (degree > level), adjacency[i] & (degree == level)
            offer[i] = min(spread[i], spread[same].min(initial=1.0)) if higher.any() else spread[i]
            weights[i, higher] = offer[higher]
            weights[i, adjacency[i] & (degree <= level)] = offer[i]
    weights[np.diag_indices(graph.p)] = 1 - weights.sum(axis=1)
    return weights


def check_mixing_matrix(weights, topology=None, *, doubly_stochastic: bool = False,
                        atol: float = 1e-10) -> np.ndarray:
    """``weights`` as a float64 array, or a UsageError naming the problem.

    Checks: square, finite, nonnegative, rows summing to 1; with ``topology``, no weight
    off the graph (``w_ij > 0`` needs ``j -> i``); with ``doubly_stochastic``, columns too.
    """
    matrix = np.asarray(weights, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UsageError(f"a mixing matrix must be square, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise UsageError("mixing matrix has non-finite entries")
    if (matrix < -atol).any():
        i, j = np.argwhere(matrix < -atol)[0]
        raise UsageError(f"mixing matrix has a negative weight w[{i}, {j}] = {matrix[i, j]:.3g}")
    rows = matrix.sum(axis=1)
    if not np.allclose(rows, 1.0, rtol=0, atol=atol):
        i = int(np.argmax(np.abs(rows - 1)))
        raise UsageError(f"mixing matrix row {i} sums to {rows[i]:.12g}, not 1")
    if doubly_stochastic:
        cols = matrix.sum(axis=0)
        if not np.allclose(cols, 1.0, rtol=0, atol=atol):
            j = int(np.argmax(np.abs(cols - 1)))
            raise UsageError(f"mixing matrix column {j} sums to {cols[j]:.12g}, not 1 (not doubly stochastic)")
    if topology is not None:
        if matrix.shape[0] != topology.p:
            raise UsageError(f"mixing matrix is {matrix.shape[0]} x {matrix.shape[0]} but the topology has "
                             f"p={topology.p} ranks")
        allowed = topology.adjacency.T | np.eye(topology.p, dtype=bool)
        if (np.abs(matrix[~allowed]) > atol).any():
            i, j = np.argwhere(~allowed & (np.abs(matrix) > atol))[0]
            raise UsageError(f"mixing matrix gives weight to w[{i}, {j}] but rank {j} does not send to rank {i}")
    return matrix


def spectral_gap(weights) -> float:
    """``1 - |lambda_2|``: one minus the second largest eigenvalue modulus of ``W`` (1.0 when p = 1).

    Gossip with ``W`` contracts the distance to consensus by about ``|lambda_2|`` per
    step, so a larger gap mixes faster (a disconnected graph has gap 0).
    """
    matrix = np.asarray(weights, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UsageError(f"spectral_gap needs a square matrix, got shape {matrix.shape}")
    if len(matrix) == 1:
        return 1.0
    if np.allclose(matrix, matrix.T):
        values = np.linalg.eigvalsh(matrix)
    else:
        values = np.linalg.eigvals(matrix)
    moduli = np.sort(np.abs(values))[::-1]
    return float(1.0 - moduli[1])


def stationary_distribution(weights) -> np.ndarray:
    """``pi`` with ``pi @ W = pi`` and ``sum(pi) = 1``: ``W^k x -> (pi @ x) * ones`` on a connected graph.

    Uniform (``1/p`` each) exactly when ``W`` is doubly stochastic.
    """
    matrix = check_mixing_matrix(weights)
    p = len(matrix)
    system = np.vstack([matrix.T - np.eye(p), np.ones((1, p))])
    target = np.zeros(p + 1)
    target[-1] = 1.0
    pi, *_ = np.linalg.lstsq(system, target, rcond=None)
    return pi
