"""Communication topologies for the gossip algorithms, as data (numpy only, no MPI).

Graphs (:mod:`.kinds`), the :class:`Topology` / :class:`TimeVaryingTopology`
objects (:mod:`.graph`), mixing weights and spectral helpers (:mod:`.mixing`)
and the ``--topology`` spec parser (:mod:`.spec`). See docs/topologies.md.

Example::

    >>> from mpisgd.gossip.topology import parse_topology, mixing_matrix
    >>> t = parse_topology("ring", 4)
    >>> t.neighbors(0), t.degree(0)
    ([1, 3], 2)
    >>> mixing_matrix(t, "metropolis")[0].round(3).tolist()
    [0.333, 0.333, 0.0, 0.333]
"""

from .graph import Topology
from .schedule import TimeVaryingTopology
from .kinds import (bipartite, exponential, fully_connected, one_peer_exponential, one_peer_hypercube, path,
                    random_regular, ring, star, torus, torus_shape)
from .mixing import (MIXING_KINDS, check_mixing_matrix, mixing_matrix, mixing_weights, spectral_gap,
                     stationary_distribution, swift_matrix)
from .spec import TOPOLOGY_SPECS, parse_topology

__all__ = [
    "MIXING_KINDS",
    "TOPOLOGY_SPECS",
    "TimeVaryingTopology",
    "Topology",
    "bipartite",
    "check_mixing_matrix",
    "exponential",
    "fully_connected",
    "mixing_matrix",
    "mixing_weights",
    "one_peer_exponential",
    "one_peer_hypercube",
    "parse_topology",
    "path",
    "random_regular",
    "ring",
    "spectral_gap",
    "star",
    "stationary_distribution",
    "swift_matrix",
    "torus",
    "torus_shape",
]
