"""The local training step: a mini-batch from this rank's shard, forward, backward, the algorithm's step.

Each rank runs the same number of steps per epoch,
``ceil(n_train / (ranks * batch_size))``, cycling through its own shard (so
uneven non-IID shards never leave a rank waiting in a collective).
"""

import math

import numpy as np
import torch

from ..comm.activity import span
from ..torch.adahessian import backward_with_graph


def steps_per_epoch(n_train: int, ranks: int, batch_size: int) -> int:
    return math.ceil(n_train / (ranks * batch_size))


class ShardSampler:
    """Endless shuffled mini-batches from one rank's shard; reshuffles on every pass."""

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(size), 0

    def next(self) -> np.ndarray:
        picked = []
        needed = self.batch_size
        while needed > 0:
            if self.position == self.size:
                self.order, self.position = self.rng.permutation(self.size), 0
            take = self.order[self.position : self.position + needed]
            self.position += len(take)
            needed -= len(take)
            picked.append(take)
        return np.concatenate(picked)

    def state_dict(self) -> dict:
        """Where the sampler stands: its stream, this pass's order and the place in it."""
        return {"rng": self.rng.bit_generator.state, "order": self.order.copy(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order, self.position = np.array(state["order"]), state["position"]


def loss_of(task, output, target):
    if task == "ratings":
        return torch.nn.functional.mse_loss(output, target)
    return torch.nn.functional.cross_entropy(output, target)


class LocalStep:
    """One step on this rank's shard (``train``: inputs and targets); calling it returns the loss."""

    def __init__(self, model, dist, task: str, train, sampler: ShardSampler):
        self.model, self.dist, self.task, self.sampler = model, dist, task, sampler
        self.x, self.y = train
        self.create_graph = getattr(dist.optimizer, "create_graph", False)

    def __call__(self) -> float:
        index = torch.from_numpy(self.sampler.next()).to(self.x.device)
        self.dist.zero_grad()
        with span("forward"):  # --trace: the compute spans (a shared no-op context otherwise)
            loss = loss_of(self.task, self.model(self.x[index]), self.y[index])
        with span("backward"):
            if self.create_graph:  # AdaHessian differentiates the gradient again
                backward_with_graph(loss)
            else:
                loss.backward()
        with span("optimizer step"):
            self.dist.step()
        value = loss.item()
        self.dist.report_loss(value)
        return value
