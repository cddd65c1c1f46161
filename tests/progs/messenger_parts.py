"""Each part of the messenger on its own: outbox, inbox (receive, newest, receive_one, exchange),
throttle, exit protocol. Every rank talks to its right neighbour and hears from its left one.

1. Outbox: messages large enough that a send completes only once its
   receiver takes it (rendezvous, 512 KiB). With a cap of 2, two are posted
   and the rest queue; a newer message with a queued tag replaces the
   queued one in place; ``drop_queued`` forgets the queue. The receiver
   gets exactly the posted ones, nothing else.
2. Inbox, fed by raw ``Isend``s: ``receive_one`` matches its tag past
   older messages of another tag; ``receive`` takes the rest oldest first,
   filtered by tag and source; ``newest`` keeps the last per (source, tag).
   ``exchange`` with both neighbours returns each one's payload and header.
3. Throttle: rank 0's messages to rank 1 cross a slow FIFO link one at a
   time: they arrive in the order queued, the k-th no earlier than the sum
   of the first k transmission times after the start.
4. Exit protocol: ranks leave at different times with sends unreceived;
   after ``leave`` every posted message has been received (the counts match
   the senders'), ``expected`` is what each peer queued for this rank, and
   no message is left behind.
"""

import time
from types import SimpleNamespace

import numpy as np
from _common import done, no_torch, world
from mpi4py import MPI

from mpisgd.comm import Backoff, Communicator, Throttle, tags
from mpisgd.comm.exit import leave
from mpisgd.comm.inbox import Inbox
from mpisgd.comm.message import Framing
from mpisgd.comm.outbox import Outbox

comm = world()
p, rank = comm.size, comm.rank
right, left = (rank + 1) % p, (rank - 1) % p
framing = Framing(header_size=1)
DEADLINE_S = 30.0


def poll_until(done, poll):
    """Call ``poll()`` until ``done()``, backing off (test-only loop with a deadline)."""
    backoff, deadline = Backoff(), time.time() + DEADLINE_S
    while not done():
        assert time.time() < deadline, f"rank {rank}: timed out"
        backoff.after(poll())


def collect(into, inbox, **which):
    """A poll: move what has arrived into ``into``; True when something did."""
    def poll():
        messages = inbox.receive(**which)
        into.extend(messages)
        return bool(messages)

    return poll


def nothing_left(net):
    comm.Barrier()
    assert not net.mpi.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "a message was left behind"
    net.free()


# 1. outbox: cap, replace-newest queue, drop
if p > 1:
    BIG, TAGS = 1 << 16, [10, 11, 12, 13, 14]
    net = Communicator(comm)
    outbox, inbox = Outbox(net, max_in_flight=2), Inbox(net, framing, None)
    for tag in TAGS:
        outbox.put(right, tag, framing.pack(np.full(BIG, float(tag)), [0]))
    assert len(outbox.in_flight[right]) == 2 and list(outbox.queue) == [(right, t) for t in TAGS[2:]]
    outbox.put(right, 13, framing.pack(np.full(BIG, 99.0), [1]))  # replaces the queued tag 13, in place
    assert outbox.dropped == 1 and list(outbox.queue) == [(right, t) for t in TAGS[2:]]
    assert outbox.meant_for[right] == 6 and outbox.sent_to[right] == 2 and outbox.pending() == 5
    assert outbox.drop_queued() == 3 and outbox.dropped == 4 and outbox.pending() == 2
    comm.Barrier()  # every rank checked its outbox before anything is received
    got = []
    take = collect(got, inbox, source=left)
    poll_until(lambda: len(got) == 2 and not outbox.pending(), lambda: outbox.progress() | take())
    assert sorted(m.tag for m in got) == TAGS[:2] and all(np.all(m.data == m.tag) for m in got), got
    assert inbox.received_from[left] == 2 and outbox.sent_to.sum() == 2
    nothing_left(net)

# 2. inbox: receive_one past other tags, receive oldest first with filters, newest; exchange
net = Communicator(comm)
inbox = Inbox(net, framing, Outbox(net).isend)
if p > 1:
    sent = [framing.pack(np.full(3, float(k)), [k]) for k in range(3)] + [framing.pack(np.full(3, 7.0), [7])]
    requests = [net.mpi.Isend(data, dest=right, tag=tags.MODEL) for data in sent[:3]]
    requests.append(net.mpi.Isend(sent[3], dest=right, tag=tags.AVERAGE_REQUEST))
    one = inbox.receive_one(left, tags.AVERAGE_REQUEST)
    assert one.source == left and one.header[0] == 7 and np.all(one.data == 7.0)
    models = []
    poll_until(lambda: len(models) == 3, collect(models, inbox, tag=tags.MODEL, source=left))
    assert [int(m.header[0]) for m in models] == [0, 1, 2] and all(np.all(m.data == m.header[0]) for m in models)
    newest = inbox.newest(models)
    assert list(newest) == [(left, tags.MODEL)] and newest[(left, tags.MODEL)].header[0] == 2
    assert inbox.receive(tag=tags.MODEL) == [] and inbox.received_from[left] == 4, inbox.received_from
    MPI.Request.Waitall(requests)
neighbours = sorted({left, right} - {rank})
EXCHANGE = 5  # not MODEL: a rank still checking section 2 must not take it
got = inbox.exchange({q: np.full(4, 10.0 * rank + q) for q in neighbours}, neighbours, EXCHANGE, length=4,
                     header=[rank])
assert sorted(got) == neighbours and all(np.all(m.data == 10.0 * q + rank) and m.header[0] == q
                                         for q, m in got.items()), got
nothing_left(net)

# 3. throttle: a FIFO link, one message at a time, each for its transmission time
net = Communicator(comm)
outbox, inbox = Outbox(net, max_in_flight=4), Inbox(net, framing, None)
RATE, SIZES = 2e6, [20_000, 5_000, 10_000]  # bytes per second; doubles: 80, 20 and 40 ms on the link
comm.Barrier()
if rank == 0 and p > 1:
    outbox.throttle, start = Throttle(RATE), time.time()
    for k, size in enumerate(SIZES):
        outbox.put(1, 20 + k, framing.pack(np.full(size, float(k)), [start]))
    assert outbox.throttle.busy and len(outbox.queue) == 2 and outbox.pending() == 3 and outbox.sent_to[1] == 0
    poll_until(lambda: not outbox.pending(), outbox.progress)
    assert outbox.throttle.transmitted == 3
if rank == 1:
    arrivals, messages = [], []

    def arrive():
        new = inbox.receive(source=0)
        arrivals.extend(time.time() - m.header[0] for m in new)  # seconds since the sender queued them
        messages.extend(new)
        return bool(new)

    poll_until(lambda: len(messages) == 3, arrive)
    assert [m.tag for m in messages] == [20, 21, 22], messages  # FIFO
    assert all(np.all(m.data == k) for k, m in enumerate(messages))
    on_link = np.cumsum([(size + 1) * 8 / RATE for size in SIZES])
    assert all(at >= 0.99 * due for at, due in zip(arrivals, on_link)), (arrivals, on_link)
nothing_left(net)

# 4. exit protocol: late leavers, unreceived sends, full accounting, nothing left
net = Communicator(comm)
outbox, inbox = Outbox(net, max_in_flight=1), Inbox(net, framing, None)
parts = SimpleNamespace(  # the interface the exit protocol uses (the Messenger facade offers the same)
    comm=net, mpi=net.mpi, sent_to=outbox.sent_to, meant_for=outbox.meant_for, received_from=inbox.received_from,
    drop_queued=outbox.drop_queued, progress=outbox.progress, pending=outbox.pending, receive=inbox.receive)

for step in range(10 * (rank + 1)):
    if p > 1:
        outbox.put(right, tags.MODEL, framing.pack(np.full(1000, float(step)), [step]))
    time.sleep(0.002)
departure = leave(parts, timeout=60)
queued_for_me = comm.alltoall(outbox.meant_for.tolist())
posted_to_me = comm.alltoall(outbox.sent_to.tolist())
assert departure.expected.tolist() == queued_for_me, (departure.expected, queued_for_me)
assert inbox.received_from.tolist() == posted_to_me and departure.drained == inbox.received_from.sum()
assert outbox.pending() == 0 and outbox.sent_to.sum() + outbox.dropped == outbox.meant_for.sum()
nothing_left(net)
no_torch()
done(comm)
