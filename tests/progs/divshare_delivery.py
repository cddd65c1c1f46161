"""DivShare delivers the fragments it sends (ALGORITHMS.md §8), without timing assertions.

1. No slow link, Ω = 8 fragments large enough that an MPI send finishes
   only once its receiver takes it (rendezvous), J = p - 1 so that every
   peer gets every fragment every round. The ranks run H = 1 rounds and,
   between rounds, only call the backward hook ``grad_ready`` until nothing
   is pending anywhere (a test-only synchronization: the algorithm's own
   hooks must move both the outbox and the inbox). Oracle: every fragment
   of every round reaches every peer, in order, with the sender's values
   of that round; nothing is dropped, and the exit protocol accounts for
   every message (delivery exactly 1).
2. The last rank has a slow uplink, a Throttle plugged into its messenger
   from outside (one fragment takes ``LINK_S`` seconds); it runs rounds
   until it has sent a few fragments while the
   others keep running. Oracle: its fragments leave at the link's pace and
   arrive (lower bound: no earlier than one transmission time after they
   were queued), each transmission carries the newest values queued (older
   queued fragments are replaced, not sent late), and every message is
   posted, dropped or replaced, with nothing left over after the exit.
"""

import time

import numpy as np
from _common import done, no_torch, world
from mpi4py import MPI

from mpisgd import FlatParams
from mpisgd.comm import Throttle, tags
from mpisgd.gossip import DivShare

comm = world()
p, rank = comm.size, comm.rank
FRAGMENTS = 8
DEADLINE_S = 20.0


def record_arrivals(algorithm):
    """Log (source, fragment, step, payload ok, age in s) of every message the algorithm receives."""
    log, receive = [], algorithm.messenger.receive

    def logged(**kwargs):
        messages = receive(**kwargs)
        now = time.time() - algorithm.clock_zero
        for m in messages:
            step = int(m.header[0])
            log.append((m.source, m.tag, step, bool(np.all(m.data == 1000.0 * m.source + step)),
                        now - float(m.header[1])))
        return messages

    algorithm.messenger.receive = logged
    return log


def step(algorithm, x):
    """One local step (H = 1: a sharing round); the model holds 1000 * rank + the round's step."""
    x[:] = 1000.0 * rank + algorithm.steps + 1
    algorithm.before_step()
    algorithm.after_step()


def settle(algorithm, what):
    """Call the backward hook until nothing is pending on any rank."""
    deadline = time.time() + DEADLINE_S
    while algorithm.messenger.pending():
        assert time.time() < deadline, (
            f"rank {rank}: {algorithm.messenger.pending()} fragments still pending {DEADLINE_S} s after {what} "
            f"(posted {algorithm.messenger.sent_to.tolist()}, received {algorithm.messenger.received_from.tolist()})")
        algorithm.grad_ready(0)
    barrier = comm.Ibarrier()
    while not barrier.Test():
        algorithm.grad_ready(0)


def leave_cleanly(algorithm):
    algorithm.leave()
    assert not algorithm.messenger.mpi.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "a message was left behind"


# 1. every fragment sent is delivered: nothing dropped, delivery exactly 1
ROUNDS, FRAGMENT_SIZE = 4, 1 << 16  # 512 KiB fragments: above the usual eager limits
x = np.zeros(FRAGMENTS * FRAGMENT_SIZE)
divshare = DivShare(FlatParams(x), comm=comm, fragments=FRAGMENTS, peers=max(p - 1, 1))
arrivals = record_arrivals(divshare)
for round_ in range(ROUNDS):
    step(divshare, x)
    settle(divshare, f"round {round_ + 1}")
posted = divshare.messenger.sent_to.copy()
expected = np.zeros_like(posted)
comm.Alltoall(posted, expected)  # what each peer posted to this rank
deadline = time.time() + DEADLINE_S
while np.any(divshare.messenger.received_from < expected):
    assert time.time() < deadline, f"rank {rank}: received {divshare.messenger.received_from}, posted {expected}"
    divshare.grad_ready(0)
leave_cleanly(divshare)
messenger = divshare.messenger
peers = [q for q in range(p) if q != rank]
assert messenger.dropped == 0, f"rank {rank} dropped {messenger.dropped} fragments"
assert np.array_equal(messenger.meant_for, messenger.sent_to), (messenger.meant_for, messenger.sent_to)
assert all(messenger.meant_for[q] == ROUNDS * FRAGMENTS for q in peers), messenger.meant_for
assert np.array_equal(messenger.received_from, expected)
for source in peers:
    for f in range(FRAGMENTS):
        steps = [s for q, tag, s, _, _ in arrivals if q == source and tag == tags.fragment_tag(f)]
        assert steps == list(range(1, ROUNDS + 1)), (source, f, steps)  # every round's copy, in order
assert all(ok for *_, ok, _ in arrivals), "a fragment did not hold its sender's values of its round"
stats = divshare.statistics()
assert p == 1 or stats["delivery"] == 1.0, stats
assert stats["messages_dropped"] == 0, stats

# 2. a slow uplink on the last rank: its fragments leave at the link's pace, newest first, and arrive
LINK_S, SLOW_SENDS, SMALL = 0.2, 3, 512
slow_rank = p - 1
slow = rank == slow_rank and p > 1
bytes_per_second = (SMALL + 2) * 8 / LINK_S  # one fragment message (payload + 2 header values)
y = np.zeros(FRAGMENTS * SMALL)
divshare = DivShare(FlatParams(y), comm=comm, fragments=FRAGMENTS, peers=max(p - 1, 1))
arrivals = record_arrivals(divshare)
messenger = divshare.messenger
if slow:
    messenger.throttle = Throttle(bytes_per_second)
barrier = None if slow else comm.Ibarrier()  # the others run until the slow rank has sent enough
start, deadline, on_link, transmissions = time.time(), time.time() + DEADLINE_S, None, []
while True:
    step(divshare, y)
    for _ in range(3):  # local work with the backward hook
        time.sleep(0.002)
        divshare.grad_ready(0)
        link = messenger.throttle.on_link if slow else None
        if link is not None and link is not on_link:
            on_link = link
            transmissions.append((int(on_link[2][-2]), divshare.steps))  # (step of its values, step now)
    if slow and barrier is None and messenger.sent_to.sum() >= SLOW_SENDS:
        barrier = comm.Ibarrier()
    assert time.time() < deadline, (f"rank {rank}: the slow rank did not send {SLOW_SENDS} fragments in {DEADLINE_S} s"
                                    + (f" (it sent {messenger.sent_to.sum()})" if slow else ""))
    if barrier is not None and barrier.Test():
        break
elapsed, before_close = time.time() - start, messenger.received_from.copy()
leave_cleanly(divshare)  # drops what is queued or on the link: nothing more is posted
sent = messenger.sent_to.copy()
from_slow = np.zeros_like(sent)
comm.Alltoall(sent, from_slow)
assert messenger.meant_for.sum() == sent.sum() + messenger.dropped  # posted, or dropped / replaced unsent
if slow:
    assert sent.sum() >= SLOW_SENDS
    assert sent.sum() * LINK_S <= elapsed + 0.01, (sent.sum(), elapsed)  # one fragment per LINK_S at most
    assert messenger.dropped > 0  # newest only: most queued fragments were replaced before their turn
    # each transmission starts with the newest values queued (this round's or, before sharing, the last one's)
    assert transmissions and all(values >= now - 1 for values, now in transmissions), transmissions
if p > 1:
    got = divshare.messenger.received_from[slow_rank] if not slow else 0
    assert slow or got == from_slow[slow_rank], (got, from_slow[slow_rank])  # the exit protocol's accounting
    taken = comm.allreduce(int(before_close[slow_rank]) if not slow else 0)
    assert taken >= 1, "no fragment of the slow rank arrived while the others were training"
    mine = [(s, age) for q, _, s, _, age in arrivals if q == slow_rank]
    assert all(age >= LINK_S * 0.99 for _, age in mine), mine  # not before one transmission time
    assert [s for s, _ in mine] == sorted(s for s, _ in mine), mine  # never an older round after a newer one
    assert all(ok for *_, ok, _ in arrivals)
no_torch()
done(comm)
