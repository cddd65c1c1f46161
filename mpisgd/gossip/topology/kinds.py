"""Graph constructors: ring, torus, exponential, random regular, full, path, star, bipartite, one-peer schedules.

Every constructor takes the number of ranks ``p`` first and returns a
connected :class:`Topology` (or a :class:`TimeVaryingTopology` whose union
over a period is connected), or raises :class:`~mpisgd.comm.UsageError`.
Degrees are those of ``p`` large enough; small ``p`` merges neighbours
(ring p = 2 is one edge, p = 1 has no neighbours).
"""

import math
from typing import Optional

import numpy as np

from ...errors import UsageError
from .graph import Topology, check_world_size
from .schedule import TimeVaryingTopology


def _circulant(p: int, offsets, directed: bool) -> np.ndarray:
    """``i -> (i + o) mod p`` for every offset (and back when undirected)."""
    matrix = np.zeros((p, p), dtype=bool)
    ranks = np.arange(p)
    for offset in offsets:
        if offset % p:
            matrix[ranks, (ranks + offset) % p] = True
    return matrix if directed else matrix | matrix.T


def _log2_ceil(p: int) -> int:
    """Number of distances 1, 2, 4, ... below p: ceil(log2 p) (0 for p = 1)."""
    return (p - 1).bit_length()


def ring(p: int) -> Topology:
    """Rank i linked with i - 1 and i + 1 (mod p): degree 2 (p = 2: one edge, degree 1)."""
    p = check_world_size(p)
    return Topology(_circulant(p, [1], directed=False), name="ring", spec="ring")


def torus_shape(p: int) -> tuple:
    """The most square ``(rows, cols)``, rows <= cols, with ``rows * cols = p`` and both sides >= 3.

    p = 1 gives (1, 1). Otherwise a UsageError when no such factorization exists
    (p prime, 2 x prime, 4, 8, ...): a side of 2 or 1 is a degenerate torus, which
    must be asked for explicitly (``torus:RxC``).
    """
    p = check_world_size(p)
    if p == 1:
        return (1, 1)
    rows = [r for r in range(3, math.isqrt(p) + 1) if p % r == 0]
    if not rows:
        example = f"torus:2x{p // 2}" if p % 2 == 0 else f"torus:1x{p} (a ring)"
        raise UsageError(
            f"torus: p={p} has no factorization rows x cols with both sides >= 3 (valid p: 9, 12, 15, 16, 18, "
            f"20, ...); ask for a degenerate torus explicitly, e.g. {example} (a side of 2 gives one neighbour "
            f"in that direction instead of two, a side of 1 none), or use ring")
    return (rows[-1], p // rows[-1])


def torus(p: int, rows: Optional[int] = None, cols: Optional[int] = None) -> Topology:
    """2-D torus (wrap-around grid), rank ``r * cols + c`` at row r, column c: degree 4.

    Without ``rows``/``cols`` the most square shape with both sides >= 3 is chosen
    (:func:`torus_shape`). Explicit shapes may be degenerate: a side of 2 links each
    rank to one rank in that direction (degree 3 for 2 x c, c >= 3; 2 x 2 is a
    4-cycle), a side of 1 to none (1 x c is a ring).
    """
    p = check_world_size(p)
    if rows is None and cols is None:
        rows, cols = torus_shape(p)
    elif rows is None or cols is None:
        side = rows if cols is None else cols
        if isinstance(side, bool) or not isinstance(side, int) or side < 1 or p % side:
            raise UsageError(f"torus: side {side!r} does not divide p={p}")
        rows, cols = (side, p // side) if cols is None else (p // side, side)
    for side in (rows, cols):
        if isinstance(side, bool) or not isinstance(side, int) or side < 1:
            raise UsageError(f"torus: sides must be positive integers, got {rows!r} x {cols!r}")
    if rows * cols != p:
        raise UsageError(f"torus: {rows}x{cols} = {rows * cols} ranks, but p={p}")
    matrix = np.zeros((p, p), dtype=bool)
    r, c = np.divmod(np.arange(p), cols)
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        other = ((r + dr) % rows) * cols + (c + dc) % cols
        keep = other != np.arange(p)
        matrix[np.arange(p)[keep], other[keep]] = True
    return Topology(matrix, name="torus", spec=f"torus:{rows}x{cols}", params={"rows": rows, "cols": cols})


def exponential(p: int, directed: bool = True) -> Topology:
    """Exponential graph (SGP, Assran et al. 2019): rank i sends to i + 2^k mod p for 2^k < p.

    Directed by default, as in SGP: out-degree = in-degree = ceil(log2 p), so uniform
    weights are doubly stochastic. ``directed=False`` links i with i +- 2^k (degree
    about 2 log2 p; 2 log2 p - 1 when p is a power of two, as +p/2 = -p/2).
    """
    p = check_world_size(p)
    offsets = [2 ** k for k in range(_log2_ceil(p))]
    return Topology(_circulant(p, offsets, directed), name="exponential", directed=directed,
                    spec="exponential" if directed else "exponential:undirected", params={"directed": directed})


def fully_connected(p: int) -> Topology:
    """Every rank linked with every other: degree p - 1 (one-step exact averaging with uniform weights)."""
    p = check_world_size(p)
    return Topology(~np.eye(p, dtype=bool), name="full", spec="full")


def path(p: int) -> Topology:
    """The line 0 - 1 - ... - (p - 1): end ranks have degree 1, the others 2 (irregular for p >= 3)."""
    p = check_world_size(p)
    matrix = np.eye(p, k=1, dtype=bool)
    return Topology(matrix | matrix.T, name="path", spec="path")


def star(p: int) -> Topology:
    """Rank 0 linked with every other rank (degree p - 1), which are linked only with rank 0 (degree 1)."""
    p = check_world_size(p)
    matrix = np.zeros((p, p), dtype=bool)
    matrix[0, 1:] = matrix[1:, 0] = True
    return Topology(matrix, name="star", spec="star")


def bipartite(p: int, complete: bool = False) -> Topology:
    """A connected bipartite graph for AD-PSGD: active = even ranks, passive = odd ranks.

    Default: each active rank i is linked with passive ranks i - 1 and i + 1 -- the ring
    for even p (degree 2), the path 0 - 1 - ... - (p - 1) for odd p (end ranks have
    degree 1). ``complete=True``: every active rank with every passive rank (degree
    ``p // 2`` for active, ``ceil(p / 2)`` for passive ranks). Needs p >= 2.
    """
    p = check_world_size(p)
    if p < 2:
        raise UsageError("bipartite topology needs p >= 2 ranks (one active and one passive)")
    parity = np.arange(p) % 2
    if complete:
        matrix = parity[:, None] != parity[None, :]
    else:
        matrix = np.zeros((p, p), dtype=bool)
        ranks = np.arange(p - 1)
        matrix[ranks, ranks + 1] = True
        if p % 2 == 0:
            matrix[p - 1, 0] = True
        matrix |= matrix.T
    parts = (range(0, p, 2), range(1, p, 2))
    return Topology(matrix, name="bipartite", spec="bipartite:complete" if complete else "bipartite",
                    params={"complete": complete}, parts=parts)


def random_regular(p: int, degree: int, seed: int = 0) -> Topology:
    """Random connected ``degree``-regular graph, the same for the same (p, degree, seed).

    Needs ``degree < p`` and ``p * degree`` even. degree 1 is connected only for p = 2;
    degree 2 is a random Hamiltonian cycle (a ring on shuffled ranks). Otherwise a
    circulant graph randomized by degree-preserving double-edge swaps (retried until
    connected); for degree > (p - 1) / 2 the complement of a sparse random regular
    graph (always connected).
    """
    p = check_world_size(p)
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise UsageError(f"regular: degree must be a non-negative integer, got {degree!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"regular: seed must be a non-negative integer, got {seed!r}")
    degree, seed = int(degree), int(seed)
    if p > 1 and not 1 <= degree < p:
        raise UsageError(f"regular:{degree}: degree must be between 1 and p - 1 = {p - 1}")
    if p == 1 and degree:
        raise UsageError(f"regular:{degree}: a single rank has no neighbours (degree must be < p = 1)")
    if p * degree % 2:
        raise UsageError(f"regular:{degree}: p * degree = {p * degree} is odd, so no {degree}-regular graph on "
                         f"p={p} ranks exists (use an even degree or an even p)")
    if degree == 1 and p > 2:
        raise UsageError(f"regular:1 on p={p} ranks is a perfect matching, which is disconnected (use p = 2 or "
                         f"degree >= 2)")
    rng = np.random.default_rng(seed)
    spec, params = f"regular:{degree}", {"degree": degree, "seed": seed}
    if degree == 2:
        order = rng.permutation(p)
        matrix = np.zeros((p, p), dtype=bool)
        matrix[order, np.roll(order, -1)] = True
        return Topology(matrix | matrix.T, name="regular", spec=spec, params=params)
    if 2 * degree > p - 1:
        complement = _random_regular_graph(p, p - 1 - degree, rng)
        return Topology(~complement & ~np.eye(p, dtype=bool), name="regular", spec=spec, params=params)
    matrix = _random_regular_graph(p, degree, rng)
    for _ in range(50):
        candidate = Topology(matrix, name="regular", spec=spec, params=params, require_connected=False)
        if candidate.is_connected():
            return candidate
        matrix = _random_regular_graph(p, degree, rng)
    raise UsageError(f"regular:{degree}: no connected graph found on p={p} ranks; try another seed")


def _random_regular_graph(p: int, degree: int, rng) -> np.ndarray:
    """A random simple ``degree``-regular graph (maybe disconnected): circulant start + double-edge swaps."""
    offsets = list(range(1, degree // 2 + 1)) + ([p // 2] if degree % 2 else [])
    matrix = _circulant(p, offsets, directed=False)
    edges = np.argwhere(np.triu(matrix)).tolist()
    if len(edges) < 2:
        return matrix
    linked = [set(np.flatnonzero(row).tolist()) for row in matrix]
    tries = 20 * len(edges)
    picks = rng.integers(0, len(edges), size=(tries, 2)).tolist()
    flips = (rng.random(tries) < 0.5).tolist()
    for (x, y), flip in zip(picks, flips):
        (a, b), (c, d) = edges[x], edges[y]
        if flip:
            c, d = d, c
        # replace a-b, c-d by a-d, c-b when that keeps the graph simple
        if x == y or a == d or c == b or d in linked[a] or b in linked[c]:
            continue
        linked[a].remove(b), linked[b].remove(a), linked[c].remove(d), linked[d].remove(c)
        linked[a].add(d), linked[d].add(a), linked[c].add(b), linked[b].add(c)
        edges[x], edges[y] = [a, d], [c, b]
    matrix = np.zeros((p, p), dtype=bool)
    pairs = np.array(edges)
    matrix[pairs[:, 0], pairs[:, 1]] = matrix[pairs[:, 1], pairs[:, 0]] = True
    return matrix


def one_peer_exponential(p: int) -> TimeVaryingTopology:
    """One-peer exponential graph: at step t rank i sends to (i + 2^(t mod K)) mod p, K = ceil(log2 p).

    Directed, one out- and one in-neighbour per step (receives from i - 2^(t mod K)); the
    period K covers every distance 1, 2, 4, ..., 2^(K-1) of the exponential graph, which is
    its union. With uniform weights (each step ``(I + P_t) / 2``) and p a power of two, K
    consecutive steps average exactly.
    """
    p = check_world_size(p)
    graphs = [Topology(_circulant(p, [2 ** k], directed=True), name="one-peer-exponential",
                       spec=f"one-peer-exponential@{k}", directed=True, require_connected=False)
              for k in range(max(1, _log2_ceil(p)))]
    return TimeVaryingTopology(graphs, name="one-peer-exponential", spec="one-peer-exponential",
                               params={"period": len(graphs)})


def one_peer_hypercube(p: int) -> TimeVaryingTopology:
    """Pairwise one-peer schedule for p a power of two: at step t rank i pairs with i XOR 2^(t mod log2 p).

    Undirected perfect matchings (degree 1 per step) whose union is the hypercube; pairwise
    averaging along them (AD-PSGD / Elastic Gossip style, alpha = 1/2) averages exactly in
    log2 p steps.
    """
    p = check_world_size(p)
    if p & (p - 1):
        raise UsageError(f"one-peer-hypercube needs p to be a power of two, got p={p}")
    ranks = np.arange(p)
    graphs = []
    for k in range(max(1, _log2_ceil(p))):
        matrix = np.zeros((p, p), dtype=bool)
        if p > 1:
            matrix[ranks, ranks ^ (1 << k)] = True
        graphs.append(Topology(matrix, name="one-peer-hypercube", spec=f"one-peer-hypercube@{k}",
                               require_connected=False))
    return TimeVaryingTopology(graphs, name="one-peer-hypercube", spec="one-peer-hypercube",
                               params={"period": len(graphs)})
