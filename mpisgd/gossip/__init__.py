"""Gossip (decentralized) algorithms and their communication topologies.

Topologies are plain data (:mod:`mpisgd.gossip.topology`, numpy only); the
algorithms talk to MPI through :mod:`mpisgd.comm`.
"""

# -- topologies (mpisgd.gossip.topology) -----------------------------------
from .topology import (MIXING_KINDS, TOPOLOGY_SPECS, TimeVaryingTopology, Topology, mixing_matrix,
                       mixing_weights, parse_topology, spectral_gap)

_TOPOLOGY_EXPORTS = ["MIXING_KINDS", "TOPOLOGY_SPECS", "TimeVaryingTopology", "Topology", "mixing_matrix",
                     "mixing_weights", "parse_topology", "spectral_gap"]

# -- algorithms --------------------------------------------------------------
from .adpsgd import ADPSGD  # noqa: E402
from .divshare import DivShare, fragment_indices  # noqa: E402
from .elastic_gossip import ElasticGossip  # noqa: E402
from .gossip_sgd import GossipingSGD  # noqa: E402
from .swift import Swift  # noqa: E402

_ALGORITHM_EXPORTS = ["ADPSGD", "DivShare", "ElasticGossip", "GossipingSGD", "Swift", "fragment_indices"]

__all__ = _TOPOLOGY_EXPORTS + _ALGORITHM_EXPORTS
