"""Split training indices among ranks: IID or Dirichlet non-IID, deterministic in the seed.

Every rank computes the same partition from the seed and keeps only its own
shard, so no data is communicated.
"""

import numpy as np

from ..errors import UsageError


def parse_partition(spec: str):
    """``"iid"`` -> ("iid", None); ``"dirichlet:0.5"`` -> ("dirichlet", 0.5)."""
    if spec == "iid":
        return "iid", None
    kind, _, value = spec.partition(":")
    if kind == "dirichlet":
        try:
            alpha = float(value)
        except ValueError:
            alpha = -1.0
        if 0 < alpha < float("inf"):
            return "dirichlet", alpha
    raise UsageError(f"--partition must be 'iid' or 'dirichlet:ALPHA' with ALPHA > 0, got {spec!r}")


def iid(labels, parts: int, seed: int) -> list:
    order = np.random.default_rng(seed).permutation(len(labels))
    return [np.sort(chunk) for chunk in np.array_split(order, parts)]


def dirichlet(labels, parts: int, seed: int, alpha: float) -> list:
    """Per class, proportions for the ranks drawn from Dir(alpha) (smaller alpha: more skew).

    For ratings (float labels) the rating value plays the role of the class.
    Every rank is given at least one sample.
    """
    rng = np.random.default_rng(seed)
    shards = [[] for _ in range(parts)]
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        shares = rng.dirichlet(np.full(parts, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for rank, chunk in enumerate(np.split(members, cuts)):
            shards[rank].extend(chunk.tolist())
    for rank in range(parts):  # lend a sample to empty ranks, from the largest shard
        if not shards[rank]:
            donor = max(range(parts), key=lambda r: len(shards[r]))
            shards[rank].append(shards[donor].pop())
    return [np.sort(np.asarray(shard, dtype=np.int64)) for shard in shards]


def partition(labels, parts: int, spec: str = "iid", seed: int = 0) -> list:
    """Index arrays, one per rank, that together cover every sample exactly once."""
    if parts > len(labels):
        raise UsageError(f"{parts} ranks but only {len(labels)} training samples: every rank needs data")
    kind, alpha = parse_partition(spec)
    return iid(labels, parts, seed) if kind == "iid" else dirichlet(labels, parts, seed, alpha)
