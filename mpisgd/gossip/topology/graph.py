"""A communication graph on ``p`` ranks, held as a numpy adjacency matrix.

:class:`Topology` is a fixed graph (a periodic schedule of graphs is
:class:`~mpisgd.gossip.topology.schedule.TimeVaryingTopology`). Both are plain data (numpy, no MPI): every rank
builds the same object from the same spec and seed, and ``describe()``
gives a JSON-able summary (with a hash of the edges) for the start-up
agreement.

Convention: ``adjacency[i, j]`` is True when ``i`` sends to ``j``. For an
undirected graph the matrix is symmetric and "sends to" is "linked with".
"""

import hashlib
from typing import Optional

import numpy as np

from ...errors import UsageError


def check_world_size(p) -> int:
    """``p`` as an int, or a UsageError unless it is an integer >= 1."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise UsageError(f"a topology needs a number of ranks p >= 1, got {p!r}")
    return int(p)


def _check_rank(rank, p: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < p:
        raise UsageError(f"rank must be an integer in [0, {p}), got {rank!r}")
    return int(rank)


def _reach(adjacency: np.ndarray, start: int) -> np.ndarray:
    """Boolean mask of the nodes reachable from ``start`` along edges i -> j."""
    seen = np.zeros(len(adjacency), dtype=bool)
    seen[start] = True
    frontier = np.array([start])
    while frontier.size:
        new = adjacency[frontier].any(axis=0) & ~seen
        seen |= new
        frontier = np.flatnonzero(new)
    return seen


def _two_colouring(adjacency: np.ndarray) -> Optional[np.ndarray]:
    """Colour 0/1 per node (rank 0, and the lowest rank of each component, get 0), or None."""
    links = adjacency | adjacency.T
    colour = np.full(len(links), -1)
    for root in range(len(links)):
        if colour[root] >= 0:
            continue
        colour[root] = 0
        frontier = np.array([root])
        while frontier.size:
            new = links[frontier].any(axis=0) & (colour < 0)
            nxt = np.flatnonzero(new)
            colour[nxt] = 1 - colour[frontier[0]]  # a BFS level has a single colour
            frontier = nxt
    same = colour[:, None] == colour[None, :]
    return None if (links & same).any() else colour


def _sha256(adjacency: np.ndarray) -> str:
    digest = hashlib.sha256(str(len(adjacency)).encode())
    digest.update(np.packbits(adjacency).tobytes())
    return digest.hexdigest()


class Topology:
    """A fixed graph on ``p`` ranks.

    Args:
        adjacency: ``p x p`` bool (or 0/1) matrix, ``adjacency[i, j]``: ``i`` sends to ``j``.
        name: the kind (``"ring"``, ``"torus"``, ...); ``spec``: the canonical spec string.
        directed: when False the matrix must be symmetric.
        params: JSON-able parameters of the construction (shown by ``describe()``).
        parts: a fixed ``(first, second)`` split of the ranks for bipartite kinds
            (AD-PSGD's active / passive ranks); checked to be a proper 2-colouring.
        require_connected: reject a disconnected graph (strongly connected when directed).

    Malformed input (not square, p < 1, self loops, asymmetric when undirected,
    disconnected) raises :class:`~mpisgd.comm.UsageError` naming the problem.

    Example::

        >>> t = Topology.from_edges(4, [(0, 1), (1, 2), (2, 3), (3, 0)], name="square")
        >>> t.neighbors(0), t.degree(0), t.is_bipartite()
        ([1, 3], 2, True)
    """

    time_varying = False

    def __init__(self, adjacency, *, name: str = "custom", spec: Optional[str] = None, directed: bool = False,
                 params: Optional[dict] = None, parts=None, require_connected: bool = True):
        matrix = np.asarray(adjacency)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise UsageError(f"{name} topology: adjacency must be a square matrix, got shape {matrix.shape}")
        check_world_size(matrix.shape[0])
        if matrix.dtype != bool:
            if not np.isin(matrix, (0, 1)).all():
                raise UsageError(f"{name} topology: adjacency entries must be 0/1 or bool")
            matrix = matrix.astype(bool)
        loops = np.flatnonzero(np.diag(matrix))
        if loops.size:
            raise UsageError(f"{name} topology: self loop at rank {int(loops[0])} (a rank is not its own neighbour)")
        if not directed and not np.array_equal(matrix, matrix.T):
            i, j = (int(v) for v in np.argwhere(matrix != matrix.T)[0])
            raise UsageError(f"{name} topology is undirected but its adjacency is not symmetric: "
                             f"edge {i}-{j} is present in one direction only")
        self.adjacency = matrix.copy()
        self.adjacency.setflags(write=False)
        self.p = len(matrix)
        self.name = name
        self.spec = spec or name
        self.directed = bool(directed)
        self.params = dict(params or {})
        self._out = [np.flatnonzero(row).tolist() for row in self.adjacency]
        self._in = [np.flatnonzero(col).tolist() for col in self.adjacency.T]
        self._parts = None
        if parts is not None:
            first, second = (sorted(int(r) for r in part) for part in parts)
            colour = np.full(self.p, -1)
            colour[first], colour[second] = 0, 1
            if sorted(first + second) != list(range(self.p)) or (
                    (self.adjacency | self.adjacency.T) & (colour[:, None] == colour[None, :])).any():
                raise UsageError(f"{name} topology: the given parts are not a bipartition of its ranks")
            self._parts = (first, second)
        if require_connected and not self.is_connected():
            missing = np.flatnonzero(~_reach(self.adjacency, 0)).tolist()
            if not missing:  # directed: everything reachable from 0, but 0 not from everything
                missing = np.flatnonzero(~_reach(self.adjacency.T, 0)).tolist()
                raise UsageError(f"{self.spec} topology on p={self.p} ranks is not strongly connected: "
                                 f"rank 0 cannot be reached from ranks {missing[:8]}")
            problem = "is not strongly connected" if self.directed else "is disconnected"
            raise UsageError(f"{self.spec} topology on p={self.p} ranks {problem}: "
                             f"rank 0 cannot reach ranks {missing[:8]}")

    @classmethod
    def from_edges(cls, p: int, edges, *, directed: bool = False, name: str = "custom", **kwargs) -> "Topology":
        """A topology from a list of ``(i, j)`` pairs (both directions when undirected)."""
        p = check_world_size(p)
        matrix = np.zeros((p, p), dtype=bool)
        for edge in edges:
            i, j = (_check_rank(v, p) for v in edge)
            matrix[i, j] = True
            if not directed:
                matrix[j, i] = True
        return cls(matrix, name=name, directed=directed, **kwargs)

    # -- neighbourhoods ------------------------------------------------------
    def neighbors(self, rank: int, step: Optional[int] = None) -> list:
        """Sorted ranks that ``rank`` sends to (its neighbours when undirected); ``step`` is ignored."""
        return list(self._out[_check_rank(rank, self.p)])

    def in_neighbors(self, rank: int, step: Optional[int] = None) -> list:
        """Sorted ranks that send to ``rank`` (equal to ``neighbors`` when undirected)."""
        return list(self._in[_check_rank(rank, self.p)])

    def peers(self, rank: int, step: Optional[int] = None) -> list:
        """Same as :meth:`neighbors`: the schedule API of :class:`TimeVaryingTopology` on a fixed graph."""
        return self.neighbors(rank)

    def degree(self, rank: int, step: Optional[int] = None) -> int:
        """Number of neighbours (out-degree when directed)."""
        return len(self._out[_check_rank(rank, self.p)])

    def in_degree(self, rank: int, step: Optional[int] = None) -> int:
        return len(self._in[_check_rank(rank, self.p)])

    def degrees(self) -> np.ndarray:
        """Out-degree of every rank."""
        return self.adjacency.sum(axis=1)

    def edges(self) -> list:
        """``(i, j)`` pairs: every directed edge, or each undirected edge once with ``i < j``."""
        pairs = np.argwhere(self.adjacency if self.directed else np.triu(self.adjacency))
        return [(int(i), int(j)) for i, j in pairs]

    def at(self, step: int) -> "Topology":
        """The graph used at ``step``: a fixed topology is its own schedule."""
        return self

    # -- properties ----------------------------------------------------------
    def is_symmetric(self) -> bool:
        return bool(np.array_equal(self.adjacency, self.adjacency.T))

    def is_connected(self) -> bool:
        """Connected (strongly connected when directed); a single rank is connected."""
        return bool(_reach(self.adjacency, 0).all() and (self.is_symmetric() or _reach(self.adjacency.T, 0).all()))

    def is_regular(self) -> bool:
        out, into = self.degrees(), self.adjacency.sum(axis=0)
        return bool((out == out[0]).all() and (into == out[0]).all())

    def is_bipartite(self) -> bool:
        """Whether the ranks split into two sets with every edge between the sets (direction ignored)."""
        return self._parts is not None or _two_colouring(self.adjacency) is not None

    def parts(self) -> tuple:
        """``(first, second)`` sorted rank lists of a bipartition; rank 0 is in ``first``.

        For the ``bipartite`` kinds these are AD-PSGD's (active, passive) = (even, odd) ranks.
        """
        if self._parts is not None:
            return (list(self._parts[0]), list(self._parts[1]))
        colour = _two_colouring(self.adjacency)
        if colour is None:
            raise UsageError(f"{self.spec} topology on p={self.p} ranks is not bipartite (it has an odd cycle)")
        return (np.flatnonzero(colour == 0).tolist(), np.flatnonzero(colour == 1).tolist())

    def describe(self) -> dict:
        """JSON-able summary for the start-up agreement (identical on every rank, with an edge hash)."""
        degrees = self.degrees()
        return {"kind": self.name, "spec": self.spec, "p": self.p, "directed": self.directed,
                "time_varying": False, "params": dict(self.params), "edges": len(self.edges()),
                "degree_min": int(degrees.min()), "degree_max": int(degrees.max()),
                "sha256": _sha256(self.adjacency)}

    def __repr__(self) -> str:
        return f"Topology({self.spec!r}, p={self.p}, edges={len(self.edges())}, directed={self.directed})"
