"""The master-worker service under mpiexec: request/reply from ANY_SOURCE, STOP, a silent worker,
a server that never answers; nothing left behind.  Usage: service.py MODE (sum, stop, silent, mute)."""

import sys
import time

import numpy as np
from _common import done, world
from mpi4py import MPI

from mpisgd.comm import Communicator, Messenger, tags
from mpisgd.comm.service import Client, Server
from mpisgd.errors import MPISGDError

comm = world()
mode = sys.argv[1]
net = Communicator(comm)
messenger = Messenger(net, header_size=2, max_in_flight=1 << 20, replace=False)
workers = list(range(1, comm.size))
ROUNDS = 20


def nothing_left():
    assert not messenger.inbox.arriving and not messenger.inbox.arrived, "a received message was not taken"
    assert not messenger.pending(), "a send is still in flight"
    assert not net.mpi.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "a message was left behind"


if mode in ("sum", "stop"):
    # server 0 keeps a running sum of the workers' vectors and answers each request with it
    total, served = np.zeros(3), []
    limit = ROUNDS * len(workers) // 2 if mode == "stop" else None
    if comm.rank == 0:
        server = Server(messenger, workers, timeout=30)

        def handle(message):
            assert message.tag == tags.REQUEST and message.header[0] == len(served_by[message.source]), message
            served_by[message.source].append(message.data.copy())
            total[:] += message.data
            served.append(message.source)
            if limit is not None and len(served) >= limit:
                server.stop()
            server.reply(message.source, total, [len(served)])

        served_by = {w: [] for w in workers}
        server.serve(handle)
        report = server.report()
        assert (report["left"], report["lost"], report["lost_at_s"]) == (workers, {}, {}), report
        assert sorted(report["left_at_s"]) == workers, report
        sent = comm.gather(None, root=0)[1:]
        for worker, vectors in zip(workers, sent):
            assert len(vectors) == len(served_by[worker]) and np.array_equal(vectors, served_by[worker]), worker
        assert np.allclose(total, np.sum([v for vs in sent for v in vs], axis=0))
        if limit is not None:
            assert limit <= len(served) < limit + len(workers), (limit, len(served))
    else:
        client = Client(messenger, [0], timeout=30)
        mine = []
        for k in range(ROUNDS):
            vector = np.random.default_rng([comm.rank, k]).standard_normal(3)
            mine.append(vector)
            reply = client.request(0, vector, [k])
            assert reply.tag == tags.REPLY and reply.header[0] >= k + 1
            if client.stopped:
                break
        assert client.stopped == (mode == "stop"), client.stopped
        assert client.leave() == [] and client.unanswered == []
        comm.gather(mine, root=0)
    nothing_left()
    done(comm)

elif mode == "silent":
    # the last worker goes silent: the server counts it lost after its timeout and finishes with the others
    silent = workers[-1]
    if comm.rank == 0:
        server = Server(messenger, workers, timeout=1.5)
        start = time.time()
        server.serve(lambda m: server.reply(m.source, m.data))
        report = server.report()
        assert report["left"] == workers[:-1] and list(report["lost"]) == [silent], report
        assert time.time() - start < 10
        print("server finished; lost:", report["lost"], flush=True)
    else:
        client = Client(messenger, [0], timeout=1.5)
        rounds = 1 if comm.rank == silent else ROUNDS
        for k in range(rounds):
            client.request(0, np.full(2, float(k)))
        if comm.rank == silent:
            time.sleep(4)  # silent well past the server's timeout
        client.leave()
        assert client.unanswered == ([0] if comm.rank == silent else []), client.unanswered
    comm.Barrier()
    if comm.rank == 0:  # the silent worker's late LEAVE is the one message left; take it
        net.mpi.Recv(np.empty(2), source=silent, tag=tags.LEAVE)
    nothing_left()
    done(comm)

elif mode == "mute":
    # a server that never answers: the worker's wait ends after its timeout with a message naming it
    if comm.rank == 0:
        server = Server(messenger, workers, timeout=30)
        server.serve(lambda message: None)
    else:
        client = Client(messenger, [0], timeout=1.0)
        start = time.time()
        try:
            client.request(0, np.zeros(2))
            raise AssertionError("a request to a mute server returned")
        except MPISGDError as error:
            assert "server rank 0 did not answer within 1 s" in str(error), error
            assert time.time() - start < 5
        client.leave()
    nothing_left()
    done(comm)
