"""``parse_topology``: the ``--topology`` spec strings of the gossip algorithms."""

import numpy as np

from ...errors import UsageError
from .graph import check_world_size
from .kinds import (bipartite, exponential, fully_connected, one_peer_exponential, one_peer_hypercube, path,
                    random_regular, ring, star, torus)

#: spec form -> what it builds (the help text of ``--topology``)
TOPOLOGY_SPECS = {
    "ring": "ring, degree 2",
    "torus": "2-D torus, most square rows x cols with both sides >= 3, degree 4",
    "torus:RxC": "2-D torus with R rows and C columns (R * C = p; sides of 1 or 2 allowed)",
    "exponential": "directed exponential graph (SGP): i -> i + 2^k, degree ceil(log2 p)",
    "exponential:undirected": "undirected exponential graph: i <-> i +- 2^k",
    "regular:D": "random connected D-regular graph, seeded by --seed",
    "full": "fully connected, degree p - 1",
    "path": "the line 0 - 1 - ... - (p - 1), degrees 1 (ends) and 2: irregular",
    "star": "rank 0 linked with every other rank, degrees p - 1 and 1: irregular",
    "bipartite": "AD-PSGD bipartite graph: even (active) ranks linked with odd neighbours i +- 1",
    "bipartite:complete": "every even (active) rank linked with every odd (passive) rank",
    "one-peer-exponential": "time-varying, directed: at step t, i -> i + 2^(t mod ceil(log2 p))",
    "one-peer-hypercube": "time-varying, undirected pairs i <-> i XOR 2^(t mod log2 p), p a power of two",
}


def _no_argument(name, build):
    def make(argument, p, seed):
        if argument is not None:
            raise UsageError(f"topology {name} takes no argument, got {name}:{argument}")
        return build(p)
    return make


def _torus(argument, p, seed):
    if argument is None:
        return torus(p)
    sides = argument.lower().split("x")
    if len(sides) != 2 or not all(side.isdigit() for side in sides):
        raise UsageError(f"torus:{argument}: expected torus:RxC with positive integers, e.g. torus:3x4")
    return torus(p, int(sides[0]), int(sides[1]))


def _exponential(argument, p, seed):
    if argument not in (None, "directed", "undirected"):
        raise UsageError(f"exponential:{argument}: expected exponential, exponential:directed or "
                         f"exponential:undirected")
    return exponential(p, directed=argument != "undirected")


def _regular(argument, p, seed):
    if argument is None or not argument.isdigit():
        raise UsageError(f"regular needs a degree, e.g. regular:3 (got {argument!r})")
    return random_regular(p, int(argument), seed)


def _bipartite(argument, p, seed):
    if argument not in (None, "complete"):
        raise UsageError(f"bipartite:{argument}: expected bipartite or bipartite:complete")
    return bipartite(p, complete=argument == "complete")


_BUILDERS = {
    "ring": _no_argument("ring", ring),
    "torus": _torus,
    "exponential": _exponential,
    "regular": _regular,
    "full": _no_argument("full", fully_connected),
    "path": _no_argument("path", path),
    "star": _no_argument("star", star),
    "bipartite": _bipartite,
    "one-peer-exponential": _no_argument("one-peer-exponential", one_peer_exponential),
    "one-peer-hypercube": _no_argument("one-peer-hypercube", one_peer_hypercube),
}


def parse_topology(spec: str, p: int, seed: int = 0):
    """Build the topology named by ``spec`` (``name`` or ``name:argument``) on ``p`` ranks.

    Returns a :class:`Topology`, or a :class:`TimeVaryingTopology` for the ``one-peer-*``
    kinds. ``seed`` only matters for ``regular:D``. Spec forms: :data:`TOPOLOGY_SPECS`.
    Errors (unknown name, bad argument, impossible or disconnected graph) are UsageErrors.

    Example::

        >>> parse_topology("torus", 12).spec
        'torus:3x4'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"topology spec must be a non-empty string, got {spec!r}")
    p = check_world_size(p)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"topology seed must be a non-negative integer, got {seed!r}")
    name, _, argument = spec.strip().partition(":")
    name = name.strip().lower().replace("_", "-")
    argument = argument.strip().lower() if _ else None
    if name not in _BUILDERS:
        raise UsageError(f"unknown topology {spec!r}; choose from {', '.join(TOPOLOGY_SPECS)}")
    return _BUILDERS[name](argument, p, int(seed))
