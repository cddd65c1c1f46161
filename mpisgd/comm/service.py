"""Master-worker messaging: servers answer workers from ``ANY_SOURCE``; no wait lasts forever.

The master-worker algorithms (:mod:`mpisgd.masterworker`) talk through a
:class:`Server` on each server rank and a :class:`Client` on each worker
rank, both on one :class:`~mpisgd.comm.Messenger` (framing, non-blocking
matched receives, a send queue that drops nothing). The tags are in
:mod:`mpisgd.comm.tags`:

==========  ===================  ==========================================
tag         direction            meaning
==========  ===================  ==========================================
REQUEST     worker -> server     asks for an answer (an update may ride along)
REPLY       server -> worker     the answer to one REQUEST
UPDATE      worker -> server     applied without an answer
LEAVE       worker -> server     the worker's last message
FAREWELL    server -> worker     the server's last message to that worker
==========  ===================  ==========================================

The first header value of every message is the service's: on a server's
messages, :data:`STOP` once :meth:`Server.stop` was called (the worker should
leave); the algorithm's own header values follow and are what
``Message.header`` holds on both sides.

Rules that make it safe:

- **Deadlines.** Every wait has a time limit (``timeout`` seconds) and
  polls with a :class:`~mpisgd.comm.backoff.Backoff`: a server shares cores
  with workers and must not spin.
- **Liveness.** A server notes when it last heard from each worker; a
  worker silent for ``timeout`` seconds is *lost* (its messages are still
  taken if it comes back: it is then *returned*). A worker whose process
  the MPI library reports dead (``detector``, e.g. a
  :class:`~mpisgd.comm.failed.FailureDetector`) is lost at once.
- **Shutdown without a collective** (it must work with a worker gone): a
  worker sends LEAVE after all its other messages and waits for every
  server's FAREWELL, taking whatever arrives before it; a server answers
  LEAVE once everything that worker sent has been received (MPI keeps one
  sender's messages in order, and so does the inbox) and :meth:`Server.serve`
  returns when every worker has left or is lost, after its own sends to the
  workers that left are complete. Nothing is left in flight or unreceived,
  and no worker waits for a server that has finished.
"""

import time

import numpy as np

from ..errors import MPISGDError
from . import tags
from .backoff import Backoff
from .message import Message

STOP = 1.0  # the service flag on a server's messages: leave now
# The longest sleep of a server's or a waiting worker's back-off: a request's answer is due within about one
# compute step, so its waits sleep at most 1 ms (a waking poll costs tens of microseconds: a few percent of a
# core) instead of the 10 ms of other waits; with 10 ms, AsyVRSC-Distributed's two workers ran 1.3 times as
# fast as one, with 1 ms 1.9 times (bench asyvrsc).
REPLY_LATENCY_S = 1e-3


def _strip(message: Message) -> Message:
    """The message with the service's header value removed."""
    return Message(message.source, message.tag, message.data, message.header[1:])


class Server:
    """The server side: takes workers' messages as they come, answers them, and keeps track of who is alive."""

    def __init__(self, messenger, workers, *, timeout: float = 120.0, farewell=None, detector=None):
        """``farewell(worker)``: the payload of the FAREWELL to ``worker`` (e.g. the final center; default empty);
        ``detector()``: the ranks whose process the MPI library reports failed (polled; cheap)."""
        self.messenger, self.stats = messenger, messenger.comm.stats
        self.farewell = farewell
        self.workers = list(workers)
        self.timeout = float(timeout)
        self.active = set(self.workers)  # neither left nor lost
        self.left = set()  # said LEAVE and got their FAREWELL
        self.lost = {}  # rank -> why it counts as lost
        self.returned = set()  # lost, then heard from again (cleared by the algorithm)
        self.started = time.perf_counter()
        self.heard = {worker: self.started for worker in self.workers}  # when each was last heard
        self.when = {}  # rank -> seconds from the start to its leaving or loss
        self.detector = detector
        self.stopping = False

    def receive(self, handle=None) -> list:
        """The workers' messages that have arrived (oldest first); never waits. LEAVE is answered here,
        after ``handle(message)`` (when given) has run on every message that arrived before it, so a
        FAREWELL's payload reflects all the worker sent (e.g. its last update)."""
        now, messages = time.perf_counter(), []
        for message in self.messenger.receive(patience=2):
            source = message.source
            self.heard[source] = now
            if source in self.lost:
                del self.lost[source]
                self.active.add(source)
                self.returned.add(source)
            if message.tag == tags.LEAVE:
                self.active.discard(source)
                self.left.add(source)
                self.when[source] = now - self.started
                self.send(source, tags.FAREWELL, () if self.farewell is None else self.farewell(source))
            else:
                messages.append(_strip(message))
                if handle is not None:
                    handle(messages[-1])
        for worker in sorted(self.active):
            if now - self.heard[worker] > self.timeout:
                self.lose(worker, f"silent for more than {self.timeout:g} s")
        for worker in self.detector() if self.detector is not None else ():
            if worker in self.active:
                self.lose(worker, "its process failed (reported by the MPI library)")
        for worker, error in self.messenger.inbox.broken.items():
            if worker in self.active:
                self.lose(worker, f"a message from it could not be received ({error})")
        return messages

    def send(self, worker: int, tag: int, payload=(), header=()) -> None:
        """Queue a message for ``worker`` (:data:`STOP` rides along once :meth:`stop` was called)."""
        self.messenger.send(worker, tag, np.asarray(payload), [STOP if self.stopping else 0.0, *header])

    def reply(self, worker: int, payload=(), header=()) -> None:
        self.send(worker, tags.REPLY, payload, header)

    def stop(self) -> None:
        """Ask every worker to leave: each message from now on carries :data:`STOP`."""
        self.stopping = True

    def lose(self, worker: int, reason: str) -> None:
        """Count ``worker`` as lost (silent, or dead by the MPI library's account)."""
        self.active.discard(worker)
        self.lost[worker] = reason
        self.when[worker] = time.perf_counter() - self.started

    def serve(self, handle, *, idle=None) -> None:
        """Call ``handle(message)`` for each message until every worker has left or is lost.

        ``idle()`` (optional) runs after each poll, e.g. a deadline of the
        algorithm's own; True when it did something. Time with nothing to do
        counts as blocked."""
        backoff = Backoff(longest=REPLY_LATENCY_S)
        while self.active:
            messages = self.receive(handle)
            moved = self.messenger.progress() or bool(messages)
            if idle is not None:
                moved = idle() or moved
            if not moved:
                with self.stats.blocked():
                    backoff.idle()
            else:
                backoff.reset()
        self._complete_sends()

    def _complete_sends(self) -> None:
        """Wait (bounded) for the sends to the workers that left; those to lost workers are abandoned."""
        backoff = Backoff(timeout=self.timeout, what="the server's last sends")
        with self.stats.blocked():
            while self.messenger.pending(self.left):
                backoff.after(self.messenger.progress())

    def report(self) -> dict:
        """Who left, who is lost and why, and when (seconds since this server started: ``left_at_s``,
        ``lost_at_s``)."""
        at = {rank: round(self.when[rank], 3) for rank in sorted(self.when)}
        return {"left": sorted(self.left), "lost": dict(sorted(self.lost.items())),
                "left_at_s": {r: t for r, t in at.items() if r in self.left},
                "lost_at_s": {r: t for r, t in at.items() if r in self.lost}}


class Client:
    """The worker side: sends to servers and waits for their answers, never longer than ``timeout``."""

    def __init__(self, messenger, servers, *, timeout: float = 120.0):
        self.messenger = messenger
        self.servers = list(servers)
        self.timeout = float(timeout)
        self.stopped = False  # a server asked this worker to leave
        self.unanswered = []  # servers that did not answer LEAVE in time (after leave())
        self.drained = 0  # messages taken while leaving
        self.farewells = {}  # server -> its FAREWELL message (header stripped), after leave()
        self.silent = False  # silence() was called: nothing is sent any more
        self.dropped = 0  # messages not sent because of silence()

    def silence(self) -> None:
        """Stop sending, for good (a failure injected for tests and benchmarks): every later
        message, LEAVE included, is dropped; :meth:`leave` then waits for nothing."""
        self.silent = True

    def send(self, server: int, tag: int, payload=(), header=()) -> None:
        if self.silent:
            self.dropped += 1
            return
        self.messenger.send(server, tag, np.asarray(payload), [0.0, *header])

    def request(self, server: int, payload=(), header=()) -> Message:
        """Send a REQUEST to ``server`` and wait for its REPLY."""
        self.send(server, tags.REQUEST, payload, header)
        return self.wait_reply(server)

    def _note(self, message: Message) -> Message:
        self.stopped |= bool(message.header[0] == STOP)
        return _strip(message)

    def wait_reply(self, server: int) -> Message:
        """The next REPLY from ``server``; :class:`MPISGDError` after ``timeout`` seconds."""
        inbox, outbox = self.messenger.inbox, self.messenger.outbox
        try:
            message = inbox.receive_one(server, tags.REPLY, while_waiting=outbox.progress, timeout=self.timeout,
                                        longest=REPLY_LATENCY_S)
        except MPISGDError:
            raise MPISGDError(f"server rank {server} did not answer within {self.timeout:g} s "
                              "(lost, or much slower than --timeout allows)") from None
        return self._note(message)

    def poll_reply(self, server: int):
        """The REPLY from ``server`` if it has arrived (else None); never waits."""
        self.messenger.progress()
        replies = self.messenger.receive(tag=tags.REPLY, source=server)
        if len(replies) > 1:
            raise MPISGDError(f"{len(replies)} replies from server {server} to one request")
        return self._note(replies[0]) if replies else None

    def leave(self) -> list:
        """Say LEAVE to every server and take what arrives until each FAREWELL (bounded by ``timeout``).

        The FAREWELLs are kept in ``farewells``. Returns the messages that arrived meanwhile (header stripped); servers
        that did not answer in time are listed in ``unanswered`` (a lost server:
        this rank still finishes)."""
        for server in self.servers:
            self.send(server, tags.LEAVE)
        waiting, taken = (set() if self.silent else set(self.servers)), []
        deadline = time.perf_counter() + self.timeout
        backoff = Backoff(longest=REPLY_LATENCY_S)
        with self.messenger.comm.stats.blocked():
            while (waiting or self.messenger.pending(self.servers)) and time.perf_counter() < deadline:
                messages = self.messenger.receive()
                for message in messages:
                    if message.tag == tags.FAREWELL:
                        waiting.discard(message.source)
                        self.farewells[message.source] = self._note(message)
                    else:
                        taken.append(self._note(message))
                backoff.after(self.messenger.progress() or bool(messages))
        self.unanswered = sorted(waiting)
        self.drained = len(taken)
        return taken
