"""The peer-to-peer messaging layer through its facade: outbox, newest-only inbox, exchange, a throttled
slow link, exit. Each part on its own: messenger_parts.py."""

import time

import numpy as np
from _common import done, world
from mpi4py import MPI

from mpisgd.comm import Backoff, Communicator, Messenger, Throttle, tags

comm = world()
rank, p = comm.rank, comm.size
right, left = (rank + 1) % p, (rank - 1) % p

# 1. exchange on a ring: each rank gets its left neighbour's vector, with the header
messenger = Messenger(Communicator(comm))
got = messenger.exchange({right: np.full(5, float(rank))}, [left], tags.MODEL, length=5, header=[7])
assert np.all(got[left].data == left) and got[left].header[0] == 7

# 2. asynchronous sends: the outbox replaces queued messages, the inbox keeps the newest
for step in range(20):
    messenger.send(right, tags.MODEL, np.full(1000, float(step)), header=[step])
    messenger.progress()
deadline = time.time() + 30
newest = {}
while time.time() < deadline and p > 1 and (newest.get((left, tags.MODEL)) is None
                                  or newest[(left, tags.MODEL)].header[0] != 19):
    messenger.progress()
    newest.update(Messenger.newest(messenger.receive(tag=tags.MODEL)))
if p > 1:
    last = newest[(left, tags.MODEL)]
    assert last.header[0] == 19 and np.all(last.data == 19.0), last.header
    assert messenger.received_from[left] + messenger.dropped >= 1

# 3. a slow uplink (a throttle plugged in from outside): a message is not delivered before its transmission time
slow = Messenger(Communicator(comm))
if rank == 0:
    slow.throttle = Throttle(1 / 2e-6)  # 2 us per byte: 80 kB take 0.16 s
comm.Barrier()
start = MPI.Wtime()
if rank == 0 and p > 1:
    slow.send(1, tags.MODEL, np.zeros(10_000), header=[start])
if rank == 1:
    message = slow.receive_one(0, tags.MODEL)
    assert MPI.Wtime() - message.header[0] >= 10_008 * 8 * 2e-6 * 0.99, MPI.Wtime() - message.header[0]
backoff = Backoff()
while slow.pending():
    backoff.after(slow.progress())

# 4. the exit protocol: ranks finish at different times with messages still flowing
for step in range(30 + 20 * rank):  # the last ranks send longest
    for peer in (left, right):
        if peer != rank:
            messenger.send(peer, tags.MODEL, np.full(1000, float(step)), header=[step])
    messenger.progress()
    messenger.receive()
    time.sleep(0.001 * (rank + 1))
start = time.time()
for m in (messenger, slow):
    m.close()
assert messenger.pending() == 0
leftover = messenger.mpi.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG)
assert not leftover, "a message was left behind"
stats = messenger.comm.stats
assert stats.bytes_sent > 0 or p == 1
done(comm)
