"""Offline datasets, partitions and models (no MPI launch needed)."""

import numpy as np
import pytest
import torch

from mpisgd.comm import UsageError
from mpisgd.train import build_model, load_dataset, partition


@pytest.mark.parametrize("name", ["digits", "synthetic", "synthetic-ratings", "movielens"])
def test_datasets_load_offline_and_deterministically(name):
    first, second = load_dataset(name, seed=3), load_dataset(name, seed=3)
    assert np.array_equal(first.y_train, second.y_train)
    assert first.info.n_train == len(first.y_train) > 0 and first.info.n_test == len(first.y_test) > 0
    assert len(first.x_train) == len(first.y_train)
    if name == "digits":
        assert first.info.n_train + first.info.n_test == 1797
    if name == "movielens":
        assert first.info.n_train + first.info.n_test == 100004


@pytest.mark.parametrize("spec", ["iid", "dirichlet:0.3", "dirichlet:100"])
def test_partitions_cover_every_sample_once(spec):
    labels = load_dataset("digits").y_train
    shards = partition(labels, 4, spec, seed=5)
    together = np.concatenate(shards)
    assert len(together) == len(labels) and len(np.unique(together)) == len(labels)
    assert all(len(s) > 0 for s in shards)
    again = partition(labels, 4, spec, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(shards, again))


def test_dirichlet_skews_labels_and_iid_does_not():
    labels = load_dataset("digits").y_train

    def skew(spec):
        shards = partition(labels, 4, spec, seed=1)
        return max(np.bincount(labels[s], minlength=10).max() / len(s) for s in shards)

    assert skew("dirichlet:0.1") > 0.3 > skew("iid")


def test_partition_errors():
    with pytest.raises(UsageError, match="every rank needs data"):
        partition(np.zeros(3), 4)
    with pytest.raises(UsageError):
        partition(np.zeros(10), 2, "dirichlet:abc")


@pytest.mark.parametrize("model, dataset", [("logreg", "digits"), ("mlp", "synthetic"), ("cnn", "digits"),
                                            ("mf", "synthetic-ratings")])
def test_models_are_identical_for_a_seed_and_fit_the_data(model, dataset):
    data = load_dataset(dataset)
    a = build_model(model, data.info, seed=4)
    b = build_model(model, data.info, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    x = torch.from_numpy(data.x_train[:5])
    out = a(x if model == "mf" else x.float())
    assert out.shape[0] == 5


def test_model_dataset_mismatch_is_a_usage_error():
    with pytest.raises(UsageError):
        build_model("cnn", load_dataset("synthetic").info)
    with pytest.raises(UsageError):
        build_model("mf", load_dataset("digits").info)
