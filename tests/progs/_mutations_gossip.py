"""Test-only mutations of the gossip family: each algorithm's averaging replaced by a no-op.

``NOOP[name]()`` patches the class of algorithm ``name`` so that it still
communicates (and records its schedule) but never mixes a received model
into its own; it returns a function that undoes the patch. ``apply(name)``
does the same by name. An oracle or accuracy test that still passes under
its mutation cannot tell averaging from no averaging.
"""


def _patch(cls, attribute, replacement):
    original = cls.__dict__[attribute]
    setattr(cls, attribute, replacement)
    return lambda: setattr(cls, attribute, original)


def _gossip():
    from mpisgd.gossip import GossipingSGD

    return _patch(GossipingSGD, "correction", lambda self, received: None)  # u_i = 0


def _elastic_gossip():
    from mpisgd.gossip import ElasticGossip

    return _patch(ElasticGossip, "correction", lambda self, received: None)  # u_i = 0


def _adpsgd():
    from mpisgd.gossip import ADPSGD

    return _patch(ADPSGD, "midpoint", lambda self, other: None)  # both keep their own model


def _divshare():
    from mpisgd.gossip import DivShare

    return _patch(DivShare, "average_fragments", lambda self, copies: None)  # fragments ignored


NOOP = {"gossip": _gossip, "elastic-gossip": _elastic_gossip, "adpsgd": _adpsgd, "divshare": _divshare}


def apply(name: str):
    """Replace algorithm ``name``'s averaging by a no-op; returns the undo function."""
    if name not in NOOP:
        raise KeyError(f"no mutation for {name!r}; known: {sorted(NOOP)}")
    return NOOP[name]()
