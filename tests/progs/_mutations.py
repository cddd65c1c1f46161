"""Test-only mutations: an algorithm's communication replaced by a no-op (issue 11).

A test that must be able to fail proves it by running again with the algorithm's
averaging switched off: its oracle program (``--mutate``) or the same command-line run
(``train_mutated.py ALGORITHM ARGS...``) calls ``apply(ALGORITHM)`` first, and the test
asserts that the oracle then fails, or that the accuracy falls clearly short.

``NOOP`` maps a registered algorithm name to a function that monkeypatches that
algorithm's class (nothing in ``mpisgd/`` knows about it: no production flag). The
patch silences only the method that exchanges model information, so the rest of the
algorithm's book-keeping (counters, snapshots, anchors, flags) still runs, and every
rank still makes the same calls, so no rank hangs. Set-up traffic (start-up agreement,
initial broadcast) is left alone.

Adding an algorithm: append ONE entry to ``NOOP``, one line if possible, with these tools:

- ``silence(cls, *methods)``: during each named method ``self.comm`` is a :class:`Silent`
  view of the communicator whose array collectives (``allreduce``, ``iallreduce``,
  ``reduction``) do nothing; everything else is the real communicator.
- ``replace(cls, method, function)``: a plain monkeypatch (``function(self, *args)``),
  for communication that does not go through ``self.comm``'s collectives.

Import mpisgd's classes inside the entry (``lambda: silence(_cls("easgd"), ...)``) so that
importing this module costs nothing; ``_cls(name)`` is the registered class.
"""

import dataclasses
import functools

__all__ = ["NOOP", "Silent", "apply", "replace", "silence"]


class _NoReduction:
    """A prepared reduction that leaves its array as it is."""

    def start(self):
        from mpisgd.comm import Completed

        return Completed()

    def run(self):
        pass


class Silent:
    """A communicator whose array collectives do nothing (each rank keeps its own values)."""

    def __init__(self, comm):
        self._comm = comm

    def __getattr__(self, name):
        return getattr(self._comm, name)

    def allreduce(self, array, **_):
        pass

    def iallreduce(self, array, **_):
        return _NoReduction().start()

    def reduction(self, array, **_):
        return _NoReduction()


def silence(cls, *methods):
    """Run each of ``cls``'s ``methods`` with ``self.comm`` silenced (see :class:`Silent`); returns the undo."""
    originals = {name: cls.__dict__.get(name) for name in methods}
    for name in methods:
        original = getattr(cls, name)

        @functools.wraps(original)
        def silenced(self, *args, _original=original, **kwargs):
            real = self.comm
            self.comm = Silent(real)
            try:
                return _original(self, *args, **kwargs)
            finally:
                self.comm = real

        setattr(cls, name, silenced)
    return lambda: [_restore(cls, name, original) for name, original in originals.items()]


def replace(cls, method, function):
    """Monkeypatch ``cls.method`` by ``function``; returns the undo."""
    original = cls.__dict__.get(method)
    setattr(cls, method, function)
    return lambda: _restore(cls, method, original)


def _restore(cls, name, original):
    if original is None:
        delattr(cls, name)  # the method was inherited
    else:
        setattr(cls, name, original)


def _cls(name):
    from mpisgd.algorithm import get_algorithm

    import mpisgd  # noqa: F401  (registers every algorithm)

    return get_algorithm(name)


def _silent_buckets(cls):
    """sync: the bucket reductions are prepared once at construction: prepare silent ones."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._reductions = [_NoReduction() for _ in self._reductions]

    cls.__init__ = __init__
    return lambda: setattr(cls, "__init__", init)


NOOP = {
    "sync": lambda: _silent_buckets(_cls("sync")),  # each rank steps with its own gradient
    "local": lambda: silence(_cls("local"), "average"),
    "cocod": lambda: silence(_cls("cocod"), "_start_average", "_average_now"),  # merge adds c - s = 0
    "fda": lambda: silence(_cls("fda"), "average"),  # still estimates, re-anchors and counts syncs
    "easgd": lambda: silence(_cls("easgd"), "start_exchange"),  # mean of pre-step models = own model
    "eamsgd": lambda: silence(_cls("eamsgd"), "start_exchange"),
    "lsgd": lambda: replace(_cls("lsgd"), "pull_toward_leaders", lambda self, *args: None),
    "gossip": lambda: replace(_cls("gossip"), "correction", lambda self, received: None),  # u_i = 0
    "elastic-gossip": lambda: replace(_cls("elastic-gossip"), "correction", lambda self, received: None),
    "adpsgd": lambda: replace(_cls("adpsgd"), "midpoint", lambda self, other: None),  # both keep their own
    "divshare": lambda: replace(_cls("divshare"), "average_fragments", lambda self, copies: None),
    "swift": lambda: replace(_cls("swift"), "mix", lambda self, newest: None),  # sends, never averages
    "easgd-async": lambda: _center_frozen(_cls("easgd-async"), _zero_update),
    "eamsgd-async": lambda: _center_frozen(_cls("eamsgd-async"), _zero_update),
    "easgd-dw": lambda: _center_frozen(_cls("easgd-dw"), _report_center),
    "asyvrsc-distributed": lambda: _after_init(_cls("asyvrsc-distributed"), "mutate_ignore_updates"),  # x stays
    "asyvrsc-shared": lambda: _shared_adds_dropped(_cls("asyvrsc-shared")),  # x stays x0
}


def _shared_adds_dropped(cls):
    """asyvrsc-shared: no update reaches the shared x (its window's ``add`` is a no-op on every instance);
    reads, estimates, the shared counter and the fences still run, so every rank makes the same calls."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.window.add = lambda delta, **_: None

    cls.__init__ = __init__
    return lambda: setattr(cls, "__init__", init)


def _after_init(cls, flag):
    """Set the test hook ``flag`` on every instance at construction (the master then skips x <- x - eta v;
    versions, epochs and replies still run)."""
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        setattr(self, flag, True)

    cls.__init__ = __init__
    return lambda: setattr(cls, "__init__", init)


def _center_frozen(cls, moved):
    """Master-worker EASGD: workers never apply the pull, servers never move the center; every message still
    flows (REQUEST, REPLY, UPDATE, LEAVE, FAREWELL), so no rank waits for one that does not come.
    ``moved(self, message)``: the worker message a server handles instead, carrying nothing that moves x~."""
    handle = cls.handle
    undo = [replace(cls, "apply_delta", lambda self: None),
            replace(cls, "handle", lambda self, message: handle(self, moved(self, message)))]
    return lambda: [u() for u in undo]


def _zero_update(self, message):
    """easgd-async: an UPDATE adds d = 0 (counters still run)."""
    from mpisgd.comm import tags

    return dataclasses.replace(message, data=0 * message.data) if message.tag == tags.UPDATE else message


def _report_center(self, message):
    """easgd-dw: a report carries x~ itself, so x~ + alpha sum_i w_i (x~ - x~) stays x~ (weights still run)."""
    return dataclasses.replace(message, data=self.center.copy())


def apply(name: str):
    """Switch off ``name``'s communication in this process (KeyError: no mutation for it yet); returns
    a function that undoes it (for several runs in one process)."""
    if name not in NOOP:
        raise KeyError(f"no no-op mutation for algorithm {name!r}: add one to tests/progs/_mutations.py NOOP")
    return NOOP[name]()
