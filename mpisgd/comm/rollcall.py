"""The end of a run that some ranks may not reach: rank 0 calls the roll, the ranks present go on together.

A collective over a communicator with a dead rank never returns, and a
master-worker run goes on when a worker exits or is killed. So, before the
collectives at the end of a run (evaluation, statistics), every rank still
there says PRESENT to rank 0; a rank that leaves early on purpose says
DEPARTED instead (:func:`announce_departure`). Rank 0 waits until every
rank has answered or is reported dead by the MPI library (``detector``),
but never more than ``timeout`` seconds; it sends the list of the ranks
present to each of them, and they build a communicator of their own with
``Comm.Create_group`` (collective over its members only). Rank 0 must be a
rank that never fails (a master-worker server).

A rank that said PRESENT waits for rank 0's answer as long as rank 0 lives
(rank 0 is still serving slower workers; its own waits are bounded), backing
off between polls.
"""

from dataclasses import dataclass, field

from ..errors import MPISGDError
from . import tags
from .backoff import Backoff
from .communicator import Communicator
from .mpi import MPI


@dataclass
class RollCall:
    """Who is at the end of the run: ``comm`` (a Communicator over ``present``, in rank order) and the others."""

    present: list
    departed: list = field(default_factory=list)  # left on purpose (said DEPARTED)
    failed: list = field(default_factory=list)  # reported dead by the MPI library
    missing: list = field(default_factory=list)  # no answer within the timeout
    comm: object = None

    def report(self) -> dict:
        return {"present": self.present, "departed": self.departed, "failed": self.failed, "missing": self.missing}


def announce_departure(comm) -> None:
    """This rank leaves the run early: tell rank 0 (a small message, complete when this returns)."""
    comm.mpi.send(None, dest=0, tag=tags.DEPARTED)


def _call_the_roll(comm, timeout: float, detector) -> dict:
    """Rank 0: wait for every other rank's PRESENT or DEPARTED (or its death, or the timeout)."""
    present, departed, failed = {0}, set(), set()
    waiting = set(range(1, comm.size))
    backoff = Backoff(longest=0.05)
    deadline = MPI.Wtime() + timeout
    while waiting and MPI.Wtime() < deadline:
        heard = False
        for tag, into in ((tags.PRESENT, present), (tags.DEPARTED, departed)):
            status = MPI.Status()
            while comm.mpi.Iprobe(MPI.ANY_SOURCE, tag, status):
                comm.mpi.recv(source=status.Get_source(), tag=tag)
                into.add(status.Get_source())
                waiting.discard(status.Get_source())
                heard = True
        if detector is not None:
            dead = waiting & set(detector())
            failed |= dead
            waiting -= dead
        backoff.after(heard)
    return {"present": sorted(present), "departed": sorted(departed), "failed": sorted(failed),
            "missing": sorted(waiting)}


def _answer(comm, detector) -> dict:
    """Any other rank: say PRESENT, then wait for rank 0's list."""
    comm.mpi.send(None, dest=0, tag=tags.PRESENT)
    backoff = Backoff(longest=0.05)
    while not comm.mpi.Iprobe(0, tags.SURVIVORS):
        if detector is not None and 0 in detector():
            raise MPISGDError("rank 0 died before the end of the run")
        backoff.idle()
    return comm.mpi.recv(source=0, tag=tags.SURVIVORS)


def roll_call(comm, *, timeout: float, detector=None) -> RollCall:
    """Called by every rank still in the run (not by the departed): who is present, and their communicator."""
    with comm.stats.blocked():
        if comm.rank == 0:
            found = _call_the_roll(comm, timeout, detector)
            for rank in found["present"][1:]:
                comm.mpi.send(found, dest=rank, tag=tags.SURVIVORS)
        else:
            found = _answer(comm, detector)
        part = among(comm, found["present"])
    return RollCall(**found, comm=part)


def among(comm, members: list, stats=None) -> Communicator:
    """A Communicator over ``members`` (ranks of ``comm``, in order); collective over the members only
    (``Comm.Create_group``), so a dead rank outside them cannot hang it. ``stats``: shared statistics."""
    group = comm.mpi.Get_group().Incl(list(members))
    part = comm.mpi.Create_group(group, tag=tags.SURVIVORS)
    group.Free()
    try:
        return Communicator(part, cuda_aware=comm.cuda_aware, stats=stats)
    finally:
        part.Free()
