"""Per-node accuracy: each training rank's own model on the whole test set, before the final average.

Every algorithm but ``sync`` (the only one with ``averages_gradients``: its
ranks step with the mean gradient and always hold the same model) lets the
ranks' models drift apart between averages: the gossip family, but also
local SGD, CoCoD, FDA, EASGD and LSGD between their averages, and the
master-worker workers, whose local models are not the center. ``finish()``
then averages them (or takes the center, or the leader) and the final
accuracy is that one model's. What the gossip papers report instead is the
accuracy of the nodes' own models; so, just before ``finish()``, every rank
that trains evaluates its own model on the SAME whole test set (one more pass
over the test set per rank) and, after it, the ranks still there gather the
results (:meth:`NodeAccuracy.gather`, over the end-of-run communicator:
with master-worker failures, the ranks present). Fields (final ``epoch``
record and ``summary``):

- ``node_ranks``: the ranks that reported (every rank; master-worker: the workers present);
- ``node_accuracy``: their accuracies, in that order;
- ``node_accuracy_mean``, ``node_accuracy_std`` (population standard deviation), ``_min``, ``_max``.

Mid-run, asynchronous ranks already evaluate their own model on the whole
test set (never waiting for each other); each rank keeps its accuracies and
they travel in the same end-of-run gather, giving the summary's
``node_accuracy_by_epoch`` (per epoch: ``epoch``, ``wall_s`` the mean of the
ranks' clocks, ``nodes``, ``mean``, ``std``, ``min``, ``max``): no message
mid-run. The synchronous ranks' mid-run evaluations cover one slice each
(summed), not comparable per node, and get no per-node figures.
"""

import numpy as np


def differs(algorithm) -> bool:
    """Whether the ranks of ``algorithm`` may hold different models before ``finish()`` (all but sync)."""
    return not algorithm.averages_gradients


def spread(accuracies) -> dict:
    """``mean``, ``std`` (population), ``min`` and ``max`` of a list of accuracies."""
    values = np.asarray(accuracies, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max())}


class NodeAccuracy:
    """This rank's per-node accuracies (final and mid-run) and, after :meth:`gather`, every rank's."""

    def __init__(self, algorithm, trains: bool, rank: int):
        self.on, self.trains, self.rank = differs(algorithm), trains, rank
        self.own, self.history, self.fields, self.by_epoch = None, [], {}, []

    def midrun(self, record: dict) -> None:
        """An asynchronous rank's own evaluation mid-run (its own model on the whole test set)."""
        if self.on and self.trains:
            self.history.append((record["epoch"], record["wall_s"], record["accuracy"]))

    def measure(self, evaluator) -> None:
        """Just before ``finish()``: this rank's own model on the whole test set."""
        if self.on and self.trains:
            self.own = evaluator.own_accuracy()

    def gather(self, comm) -> None:
        """After ``finish()``, on every rank of ``comm`` (the ranks still there): every rank's figures."""
        if not self.on:
            return
        reports = [r for r in comm.allgather_object((self.rank, self.own, self.history)) if r[1] is not None]
        if not reports:
            return
        stats = spread([own for _, own, _ in reports])
        self.fields = {"node_ranks": [rank for rank, _, _ in reports],
                       "node_accuracy": [own for _, own, _ in reports],
                       **{f"node_accuracy_{key}": value for key, value in stats.items()}}
        epochs = {}
        for _, _, history in reports:
            for epoch, wall, accuracy in history:
                epochs.setdefault(epoch, []).append((wall, accuracy))
        self.by_epoch = [{"epoch": epoch, "wall_s": float(np.mean([w for w, _ in seen])), "nodes": len(seen),
                          **spread([a for _, a in seen])} for epoch, seen in sorted(epochs.items())]

    def summary_fields(self) -> dict:
        if not self.fields:
            return {}
        return {**self.fields, **({"node_accuracy_by_epoch": self.by_epoch} if self.by_epoch else {})}
