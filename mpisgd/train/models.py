"""Small models for the default runs: logistic regression, MLP, CNN (also with BatchNorm), matrix factorization.

Each builder takes the dataset's :class:`~mpisgd.train.data.DatasetInfo` and
returns a ``torch.nn.Module``. Classification models map a batch of
features to class logits; the factorization model maps (user, item) index
pairs to predicted ratings.
"""

import math

import torch
from torch import nn

from ..errors import UsageError


class MatrixFactorization(nn.Module):
    """Rating ≈ mean + user bias + item bias + <user vector, item vector>."""

    def __init__(self, n_users: int, n_items: int, rank: int, mean: float):
        super().__init__()
        self.user = nn.Embedding(n_users, rank)
        self.item = nn.Embedding(n_items, rank)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.mean = mean

    def forward(self, pairs):
        users, items = pairs[:, 0], pairs[:, 1]
        dot = (self.user(users) * self.item(items)).sum(dim=1)
        return self.mean + dot + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1)


def _classifier_input(info, model):
    if info.task != "classification":
        raise UsageError(f"model {model!r} needs a classification dataset; {info.name!r} is {info.task}")
    return info.n_features, info.n_classes


def logreg(info, hidden: int):
    features, classes = _classifier_input(info, "logreg")
    return nn.Linear(features, classes)


def mlp(info, hidden: int):
    features, classes = _classifier_input(info, "mlp")
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def cnn(info, hidden: int, *, batch_norm: bool = False, name: str = "cnn"):
    """Two 3x3 convolutions (16, 32 channels) with max pooling, then two linear layers; ``batch_norm``:
    a BatchNorm2d after each convolution (``cnn-bn``; it mixes the samples of a batch, so ``--dp``
    refuses it)."""
    features, classes = _classifier_input(info, name)
    if info.image_shape is None:
        raise UsageError(f"model {name!r} needs image data; dataset {info.name!r} has none (try digits)")
    channels, height, width = info.image_shape
    pooled = math.ceil(height / 4) * math.ceil(width / 4)

    def block(inputs, outputs):
        norm = [nn.BatchNorm2d(outputs)] if batch_norm else []
        return [nn.Conv2d(inputs, outputs, 3, padding=1), *norm, nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]

    return nn.Sequential(nn.Unflatten(1, info.image_shape), *block(channels, 16), *block(16, 32),
                         nn.Flatten(), nn.Linear(32 * pooled, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def cnn_bn(info, hidden: int):
    return cnn(info, hidden, batch_norm=True, name="cnn-bn")


def mf(info, hidden: int):
    if info.task != "ratings":
        raise UsageError(f"model 'mf' needs a ratings dataset (movielens, synthetic-ratings), not {info.name!r}")
    return MatrixFactorization(info.n_users, info.n_items, hidden, info.mean_rating)


MODELS = {"logreg": logreg, "mlp": mlp, "cnn": cnn, "cnn-bn": cnn_bn, "mf": mf}


def build_model(name: str, info, *, hidden: int = 64, seed: int = 0, dtype=torch.float32):
    """The same initial model on every rank: the weights come from ``seed`` alone."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS[name](info, hidden)
    return model.to(dtype)
