"""A periodic schedule of graphs: the graph used at step ``t`` is ``graphs[t % period]``.

Plain data like :class:`~mpisgd.gossip.topology.graph.Topology` (numpy, no
MPI); one-peer exponential and hypercube schedules are built from it.
"""

import hashlib
from typing import Optional

import numpy as np

from ...errors import UsageError
from .graph import Topology, _sha256


class TimeVaryingTopology:
    """A periodic schedule of graphs on the same ``p`` ranks: step ``t`` uses ``graphs[t % period]``.

    The single graphs may be disconnected (a one-peer graph is a union of
    cycles); with ``require_connected`` their union over one period must be
    connected, so information reaches every rank within a period.

    Example::

        >>> from mpisgd.gossip.topology import one_peer_exponential
        >>> s = one_peer_exponential(8)
        >>> [s.peers(0, t) for t in range(4)]
        [[1], [2], [4], [1]]
    """

    time_varying = True

    def __init__(self, graphs, *, name: str = "custom-schedule", spec: Optional[str] = None,
                 params: Optional[dict] = None, require_connected: bool = True):
        self.graphs = tuple(graphs)
        if not self.graphs or not all(isinstance(g, Topology) for g in self.graphs):
            raise UsageError(f"{name} schedule needs at least one Topology")
        self.p = self.graphs[0].p
        if any(g.p != self.p for g in self.graphs):
            raise UsageError(f"{name} schedule: its graphs have different numbers of ranks")
        self.name = name
        self.spec = spec or name
        self.params = dict(params or {})
        self.directed = any(g.directed for g in self.graphs)
        if require_connected and not self.is_connected():
            raise UsageError(f"{self.spec} schedule on p={self.p} ranks: the union of its graphs over a "
                             f"period is disconnected")

    @property
    def period(self) -> int:
        return len(self.graphs)

    def at(self, step: int) -> Topology:
        """The graph used at ``step`` (a non-negative integer)."""
        if step is None:
            raise UsageError(f"{self.spec} is a time-varying topology: pass the step")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise UsageError(f"step must be a non-negative integer, got {step!r}")
        return self.graphs[int(step) % self.period]

    def neighbors(self, rank: int, step: Optional[int] = None) -> list:
        """Sorted ranks that ``rank`` sends to at ``step``."""
        return self.at(step).neighbors(rank)

    def in_neighbors(self, rank: int, step: Optional[int] = None) -> list:
        """Sorted ranks that send to ``rank`` at ``step``."""
        return self.at(step).in_neighbors(rank)

    def peers(self, rank: int, step: Optional[int] = None) -> list:
        """The ranks ``rank`` talks to (sends to) at ``step``: same as :meth:`neighbors`."""
        return self.at(step).neighbors(rank)

    def degree(self, rank: int, step: Optional[int] = None) -> int:
        return self.at(step).degree(rank)

    def in_degree(self, rank: int, step: Optional[int] = None) -> int:
        return self.at(step).in_degree(rank)

    def union(self) -> Topology:
        """Every edge used over one period, as one (possibly directed) topology."""
        matrix = np.logical_or.reduce([g.adjacency for g in self.graphs])
        return Topology(matrix, name=f"{self.name}-union", spec=f"{self.spec} (union)", directed=self.directed,
                        require_connected=False)

    def is_connected(self) -> bool:
        """Whether the union over one period is (strongly) connected."""
        return self.union().is_connected()

    def is_bipartite(self) -> bool:
        return self.union().is_bipartite()

    def parts(self) -> tuple:
        return self.union().parts()

    def describe(self) -> dict:
        digest = hashlib.sha256("".join(_sha256(g.adjacency) for g in self.graphs).encode()).hexdigest()
        return {"kind": self.name, "spec": self.spec, "p": self.p, "directed": self.directed,
                "time_varying": True, "params": dict(self.params), "period": self.period, "sha256": digest}

    def __repr__(self) -> str:
        return f"TimeVaryingTopology({self.spec!r}, p={self.p}, period={self.period})"
