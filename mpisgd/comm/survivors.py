"""The ranks of a communicator that are still alive, and a communicator over them for the collectives.

A gossip run goes on when a rank is killed (``kill -9``): its peers stop
choosing it, and the collectives (a synchronous round's all-gather, the exit
protocol's barrier, the final average) run among the ranks still alive. A
collective over a communicator with a dead rank never completes, so each is
posted non-blocking and waited for by polling (:meth:`Survivors.wait`), asking
the MPI library which ranks failed (:class:`~mpisgd.comm.failed.FailureDetector`,
at most every 0.5 s). When a member is reported dead, :class:`PeerLost` ends
the wait; :meth:`Survivors.run` then :meth:`shrinks <Survivors.shrink>` the
members and runs the collective again on a new communicator:

1. every survivor sends the dead ranks it knows of to every other survivor
   (on a private duplicate, so no algorithm's ``ANY_TAG`` receive takes them)
   and waits for theirs, calling ``poll()`` meanwhile (an AD-PSGD passive
   worker still answers an active one that has not reached a collective yet);
2. the union of what they sent (the same on every survivor) leaves;
3. ``Comm.Create_group`` of the rest (collective over its members only:
   :func:`~mpisgd.comm.rollcall.among`), then each follower (another
   communicator that must shrink in step, e.g. the training harness's).

Abandoned requests on the old communicator are kept (never freed: MPI may
still write their buffers). A second rank lost during a shrink is not
handled (docs/failures.md).
"""

import time

import numpy as np

from . import tags
from .backoff import Backoff
from .failed import FailureDetector
from .rollcall import among

LIBRARY = "its process failed (reported by the MPI library)"


class PeerLost(Exception):
    """A rank this wait depends on is dead: ``ranks``."""

    def __init__(self, ranks):
        super().__init__(f"rank(s) {sorted(ranks)} lost")
        self.ranks = sorted(ranks)


class Survivors:
    """``members`` (alive, by the ranks of ``base``), ``comm`` over them; ``lost``: rank -> reason."""

    def __init__(self, base, detector=None):
        self.base = base  # a Communicator (the algorithm's); its ranks name peers throughout
        self.comm = base  # the collectives' communicator: base until a rank is lost
        self.members = list(range(base.size))
        self.detector = FailureDetector(base) if detector is None else detector
        self.signals = base.mpi.Dup()  # the shrink's own messages
        self.lost, self.lost_at = {}, {}  # rank -> reason, rank -> seconds after the start
        self.followers = []  # follow(members): run inside each shrink, collective among the members
        self.abandoned = []  # requests (and buffers) left on a communicator with a dead rank
        self.start = time.perf_counter()

    def mark(self, rank: int, reason: str) -> bool:
        """Count ``rank`` lost (locally: it leaves the peer sets); True when it was not yet."""
        if rank in self.lost:
            return False
        self.lost[rank] = reason
        self.lost_at[rank] = round(time.perf_counter() - self.start, 3)
        return True

    def notice(self, broken=None) -> list:
        """The ranks newly found lost: reported by the library, or ``broken`` (rank -> error of a
        failed receive from it; this rank's own evidence)."""
        new = [rank for rank in self.detector() if self.mark(rank, LIBRARY)]
        for rank, error in (broken or {}).items():
            if self.mark(rank, f"a message from it could not be received ({error})"):
                new.append(rank)
        return new

    def check(self) -> None:
        """PeerLost when the library reports a member of the collectives' communicator dead."""
        dead = set(self.detector()) & set(self.members)
        if dead:
            raise PeerLost(dead)

    def wait(self, request, keep=()) -> None:
        """Poll ``request`` (backing off) until complete; PeerLost (``request`` abandoned) when a member died."""
        backoff = Backoff()
        with self.comm.stats.blocked():
            while not request.Test():
                try:
                    self.check()
                except PeerLost:
                    self.abandoned.append((request, keep))
                    raise
                backoff.idle()

    def run(self, collective, poll=None):
        """``collective()`` (it waits with :meth:`wait` or :meth:`check`), shrinking and running it again
        whenever a member is lost; ``poll()`` runs while the survivors gather for the shrink."""
        while True:
            try:
                return collective()
            except PeerLost:
                self.shrink(poll)

    def shrink(self, poll=None) -> None:
        """Collective over the survivors: drop the dead members, new ``comm``, then the followers."""
        dead = set(self.detector()) & set(self.members)
        others = [r for r in self.members if r != self.base.rank and r not in dead]
        sends = [self.signals.isend(sorted(dead), dest=r, tag=tags.SURVIVORS) for r in others]
        heard, backoff = {}, Backoff()
        while len(heard) < len(others):
            for r in others:
                if r not in heard and self.signals.Iprobe(source=r, tag=tags.SURVIVORS):
                    heard[r] = self.signals.recv(source=r, tag=tags.SURVIVORS)
            backoff.after(bool(poll and poll()))
        for rank in dead.union(*map(set, heard.values())):
            self.mark(rank, LIBRARY)
        for request in sends:
            request.wait()
        self.members = [r for r in self.members if r not in self.lost]
        old, self.comm = self.comm, among(self.base, self.members, stats=self.base.stats)
        if old is not self.base:
            old.free()
        for follow in self.followers:
            follow(self.members)

    def allgather(self, row, fill) -> np.ndarray:
        """Every member's ``row`` (a small array), as an array over all ranks of ``base`` with
        ``fill`` for the ranks no longer members."""
        row = np.ascontiguousarray(row)

        def gather():
            out = np.empty((len(self.members), *row.shape), dtype=row.dtype)
            self.wait(self.comm.mpi.Iallgather(row, out), keep=(row, out))
            self.comm.stats.count((len(out) - 1) * row.nbytes, (len(out) - 1) * row.nbytes)
            full = np.full((self.base.size, *row.shape), fill, dtype=row.dtype)
            full[self.members] = out
            return full

        return self.run(gather)

    def report(self) -> dict:
        """The summary's fields: who took part in the end of the run, who was lost, why and when."""
        return {"present": list(self.members), "failed": sorted(r for r in self.lost if r not in self.members),
                "lost": dict(sorted(self.lost.items())), "lost_at_s": dict(sorted(self.lost_at.items()))}

    def free(self) -> None:
        if self.comm is not self.base:
            self.comm.free()
        self.comm = self.base
        if self.signals is not None:
            self.signals.Free()
            self.signals = None
