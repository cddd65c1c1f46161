"""DivShare: asynchronous decentralized learning with model fragments (Biswas et al., WWW'25).

The flat model's indices are split into ``fragments`` (Ω) parts by one random
permutation drawn from a seed every rank shares, so a receiver knows a
fragment's indices from its id alone (``tag = FRAGMENT + id``). Every
``local_steps`` (H) steps each rank

1. drops its queued fragments that are not yet on their way (``drop_stale``:
   stale models are never sent late; a fragment already posted, or on a
   throttled messenger's slow link, goes on);
2. for each fragment, picks ``peers`` (J) random neighbours and queues the
   fragment's current values for them (in a shuffled order); the outbox
   sends them while training continues;
3. averages per coordinate with the newest copy of each (sender, fragment)
   that has arrived: ``x[k] <- (x[k] + sum of copies covering k) / (1 + #copies covering k)``.

Between rounds the hooks (``grad_ready`` during backward, ``after_step``
every step) advance the outbox and take the fragments that have arrived
into the inbox (newest copy per (sender, fragment)), as the artifact's
sender and receiver threads do: MPI finishes a send only while its
receiver also calls into MPI (a rendezvous send, or an eager one once the
receiver's buffers are full, waits for the receive), so a rank that takes
fragments once per round holds its peers' sends back and their queued
fragments are dropped as stale. The per-peer in-flight cap is four
models' worth, ``4 * fragments`` sends (``messenger_options``), so that one
round's fragments never wait behind it.

Recorded schedule (``record``, :mod:`mpisgd.gossip.base`): sharing logs
``("send", peer, stamp = step, fragment)`` per fragment queued; aggregation
``("fragment", sender, stamp = the sender's step, fragment)`` per copy averaged.

Ω = 1 and J = p - 1 with every fragment delivered before aggregation is
exact model averaging. Differences from the artifact: the permutation is of
the whole flat vector (the artifact permutes each tensor and takes the union
of the parts; both give fragments of equal size whose indices a receiver can
rebuild), and the local optimizer's state is kept (the artifact recreates it
every iteration by default).
"""

import hashlib

import numpy as np

from ..algorithm import Option, positive, register
from ..comm import Messenger, UsageError, tags
from .asynchronous import AsyncGossip

EMPTY_PASSES = 4  # probes in a row that find nothing end a drain of the arrivals (Messenger.receive)


def fragment_indices(numel: int, fragments: int, seed: int) -> list:
    """Ω index arrays that partition ``range(numel)``; equal sizes, the last takes the remainder."""
    order = np.random.default_rng(seed).permutation(numel)
    size = numel // fragments
    cuts = [size * f for f in range(1, fragments)]
    return [np.sort(part) for part in np.split(order, cuts)]


@register
class DivShare(AsyncGossip):
    name = "divshare"
    summary = "DivShare: model fragments sent to random peers in parallel with training"
    options = {**AsyncGossip.options,
               "fragments": Option(1, "fragments of the model (Omega)", positive),
               "peers": Option(3, "random neighbours each fragment goes to (J; capped at the degree)", positive),
               "local_steps": Option(1, "local steps between sharing rounds (H)", positive),
               "drop_stale": Option(True, "drop fragments still queued from the previous round")}
    models_in_flight = 4  # per peer; the messenger's cap is this many models' worth of fragments

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        if self.fragments > min(self.flat.numel, tags.MAX_FRAGMENTS):
            raise UsageError(f"{self.fragments} fragments for {self.flat.numel} parameters")
        self.indices = fragment_indices(self.flat.numel, self.fragments, self.gossip_seed)
        self.inbox = {}  # (sender, tag) -> newest Message

    def messenger_options(self) -> dict:
        """Per-peer in-flight cap: ``models_in_flight`` models' worth of fragments."""
        return {**super().messenger_options(), "max_in_flight": self.models_in_flight * self.fragments}

    def fingerprint(self) -> str:
        """A hash of the fragment indices (identical on every rank for the same seed)."""
        digest = hashlib.sha256()
        for part in self.indices:
            digest.update(part.tobytes())
        return digest.hexdigest()

    def share(self) -> None:
        """Queue every fragment for J random neighbours (dropping last round's stale ones)."""
        if self.drop_stale:
            self.messenger.drop_queued(keep_transmitting=True)  # a throttled link finishes its fragment
        neighbours = self.neighbours()
        if not neighbours:
            return
        model = self.model_to_host()
        count = min(self.peers, len(neighbours))
        jobs = [(int(peer), f) for f in range(self.fragments)
                for peer in self.rng.choice(neighbours, size=count, replace=False)]
        for position in self.rng.permutation(len(jobs)):
            peer, f = jobs[position]
            self.log("send", peer, self.steps, f)
            self.messenger.send(peer, tags.fragment_tag(f), model[self.indices[f]], header=self.stamp())

    def take_arrivals(self) -> None:
        """Move the fragments that have arrived into the inbox (newest copy per sender and fragment)."""
        if not self.finished:
            self.inbox.update(Messenger.newest(self.messenger.receive(patience=EMPTY_PASSES)))

    def grad_ready(self, index: int) -> None:
        """During backward: advance the outbox and take arrivals (a send finishes once its peer takes it)."""
        super().grad_ready(index)
        self.take_arrivals()

    def aggregate(self) -> None:
        """Average per coordinate with the newest fragment copies that have arrived."""
        self.take_arrivals()
        if not self.inbox:
            return
        copies = []
        for (sender, tag), message in self.inbox.items():
            self.log("fragment", sender, message.header[0], tags.fragment_of(tag))
            copies.append((self.indices[tags.fragment_of(tag)], message.data))
        self.average_fragments(copies)
        self.note_staleness(self.inbox.values())
        self.inbox.clear()

    def average_fragments(self, copies) -> None:
        """x[k] <- (x[k] + sum of the copies covering k) / (1 + #copies covering k); ``copies``: (indices, values)."""
        total = self.model_to_host().copy()
        count = np.ones(len(total))
        for index, values in copies:
            total[index] += values
            count[index] += 1
        np.divide(total, count, out=self.host)
        self.host_to_model()

    def after_step(self) -> None:
        super().after_step()
        self.progress()  # before sharing: what can go out now is not dropped as stale
        self.take_arrivals()
        if self.steps % self.local_steps == 0:
            self.share()
            self.aggregate()
