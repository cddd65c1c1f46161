"""Clipping rules, per-sample gradients, noise and Poisson sampling (ALGORITHMS.md §10.1, §10.5), no MPI.

Oracles: the rules' formulas as the spec writes them; per-sample gradients
from a loop of single-sample ``backward()`` calls (independent of ``vmap``).
"""

import math
import warnings

import numpy as np
import pytest
import torch

from mpisgd.errors import UsageError
from mpisgd.privacy.clipping import RULES, autos, nsgd, psac, weight_rule
from mpisgd.privacy.noise import GaussianNoise, SeededNoiseWarning
from mpisgd.privacy.per_sample import PerSampleGradients
from mpisgd.privacy.sampling import PoissonSampler
from mpisgd.train.data import DatasetInfo
from mpisgd.train.models import build_model
from mpisgd.train.step import loss_of

NORMS = np.logspace(-8, 6, 281)
SPEC = {  # ALGORITHMS.md §10.1, written out again: the oracle for the registry
    "dpsgd": lambda n, c, r: min(1.0, c / n) if n > 0 else 1.0,
    "nsgd": lambda n, c, r: c / (n + r),
    "autos": lambda n, c, r: c / (n + r),
    "psac": lambda n, c, r: c / (n + r / (n + r)),
}


def test_the_registry_follows_the_spec_formulas():
    for name, formula in SPEC.items():
        for clip, r in ((1.0, 0.01), (0.3, 0.5), (7.0, 2.0)):
            w = weight_rule(name, clip, None if name == "dpsgd" else r)
            for n in (0.0, 1e-8, 0.05, 0.3, 1.0, 7.0, 1e6):
                assert math.isclose(float(w(n)), formula(n, clip, r), rel_tol=1e-14), (name, n)


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("clip", [0.1, 1.0, 10.0])
def test_property1_clipped_norm_at_most_clip(name, clip):
    """§10.5.1: ||w(||g||) g|| <= C for ||g|| in 1e-8..1e6, to rounding (1e-12 relative), and w finite at 0."""
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((len(NORMS), 10))
    g = directions / np.linalg.norm(directions, axis=1, keepdims=True) * NORMS[:, None]
    w = weight_rule(name, clip)
    for backend in (np.asarray, torch.from_numpy):  # the same rule on numpy arrays and torch tensors
        norms = backend(np.linalg.norm(g, axis=1))
        clipped = np.linalg.norm(np.asarray(w(norms))[:, None] * g, axis=1)
        assert np.all(clipped <= clip * (1 + 1e-12)), clipped.max() / clip
        assert np.all(np.isfinite(np.asarray(w(backend(np.zeros(3))))))
    assert math.isfinite(float(w(0.0))) and float(w(0.0)) > 0


@pytest.mark.parametrize("r, peak_at, peak", [(0.01, 0.09, 5.263), (0.1, 0.2162, 1.878), (0.5, 0.2071, 1.094)])
def test_property2_psac_peaks_where_the_paper_puts_it(r, peak_at, peak):
    """§10.5.2: for r < 1 the weight rises from w(0) = C to C/(2 sqrt(r) - r) at sqrt(r) - r, then falls."""
    clip = 2.0
    n = np.linspace(0.0, 3.0, 300001)
    w = psac(n, clip, r)
    top = int(np.argmax(w))
    assert abs(n[top] - (math.sqrt(r) - r)) < 2e-5 and abs(n[top] - peak_at) < 1e-4
    assert math.isclose(w[top], clip / (2 * math.sqrt(r) - r), rel_tol=1e-9)
    assert round(w[top] / clip, 3) == peak  # ALGORITHMS.md's simulated values
    assert w[0] == clip and np.all(np.diff(w[: top + 1]) > 0) and np.all(np.diff(w[top:]) < 0)


@pytest.mark.parametrize("r", [1.0, 1.5, 10.0])
def test_property2_psac_monotone_for_r_at_least_one(r):
    w = psac(np.linspace(0.0, 50.0, 100001), 1.0, r)
    assert np.all(np.diff(w) <= 0)


def test_property3_psac_nsgd_autos_agree_on_large_gradients():
    """§10.5.3: sigma = 0, every per-sample norm >> r: the three sums differ by a vanishing relative amount."""
    rng = np.random.default_rng(1)
    directions = rng.standard_normal((64, 20))
    gaps = []
    for scale in (1e1, 1e3, 1e5):
        g = directions / np.linalg.norm(directions, axis=1, keepdims=True) * scale * rng.uniform(1, 3, (64, 1))
        n = np.linalg.norm(g, axis=1)
        sums = {name: weight_rule(name, 1.0)(n) @ g for name in ("psac", "nsgd", "autos")}
        gaps.append(max(np.linalg.norm(sums[a] - sums["nsgd"]) / np.linalg.norm(sums["nsgd"])
                        for a in ("psac", "autos")))
    assert gaps[0] < 1e-3 and gaps[-1] < 1e-7 and gaps == sorted(gaps, reverse=True), gaps


def test_bad_rule_arguments_are_refused():
    for args, message in ((("clipall", 1.0), "unknown clipping rule"), (("psac", 0.0), "clip C must be > 0"),
                          (("nsgd", 1.0, 0.0), "r of clipping rule"), (("autos", 1.0, -1.0), "gamma"),
                          (("dpsgd", 1.0, 0.1), "takes no r")):
        with pytest.raises(UsageError, match=message):
            weight_rule(*args)
    assert nsgd(0.0, 1.0) == 100.0 and autos(0.0, 1.0) == 100.0 and psac(0.0, 1.0) == 1.0  # w(0)


# -- per-sample gradients ------------------------------------------------------------------------

CLASSIFICATION = DatasetInfo("digits-like", "classification", 100, 10, 64, 10, (1, 8, 8))
RATINGS = DatasetInfo("ratings-like", "ratings", 100, 10, n_users=9, n_items=7, mean_rating=3.5)


def _problem(name, batch=13):
    generator = torch.Generator().manual_seed(5)
    if name == "mf":
        model = build_model(name, RATINGS, hidden=4, dtype=torch.float64)
        x = torch.stack([torch.randint(0, 9, (batch,), generator=generator),
                         torch.randint(0, 7, (batch,), generator=generator)], dim=1)
        y = 1 + 4 * torch.rand(batch, generator=generator, dtype=torch.float64)
        return model, x, y, lambda out, t: loss_of("ratings", out, t)
    model = build_model(name, CLASSIFICATION, hidden=16, dtype=torch.float64)
    x = torch.rand(batch, 64, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=generator)
    return model, x, y, lambda out, t: loss_of("classification", out, t)


def _loop_oracle(model, x, y, loss):
    """Per-sample gradients by one backward() per sample, flattened in model.parameters() order."""
    rows = []
    for i in range(len(x)):
        model.zero_grad(set_to_none=True)
        loss(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                               for p in model.parameters()]))
    return torch.stack(rows)


@pytest.mark.parametrize("name", ["logreg", "mlp", "cnn", "mf"])
def test_per_sample_gradients_equal_a_backward_loop(name):
    model, x, y, loss = _problem(name)
    expected = _loop_oracle(model, x, y, loss)
    grads = PerSampleGradients(model, loss)
    assert grads.numel == expected.shape[1]
    assert torch.allclose(grads.per_sample(x, y), expected, rtol=0, atol=1e-10)
    clip = float(expected.norm(dim=1).median())  # some samples clipped, some not
    weights = torch.tensor([SPEC["psac"](float(n), clip, 0.01) for n in expected.norm(dim=1)], dtype=torch.float64)
    for max_batch in (None, 1, 5):  # virtual batches give the same sum
        batched = PerSampleGradients(model, loss, max_batch=max_batch)
        total = batched.weighted_sum(x, y, weight_rule("psac", clip))
        assert torch.allclose(total.sum, weights @ expected, rtol=0, atol=1e-10)
        assert torch.allclose(total.norms, expected.norm(dim=1), rtol=0, atol=1e-10)
        assert torch.allclose(batched.per_sample(x, y), expected, rtol=0, atol=1e-10)


def test_flat_order_is_flatparams_order_and_sum_lands_in_the_flat_buffer():
    from mpisgd.flat import FlatParams

    model, x, y, loss = _problem("mlp", batch=6)
    expected = _loop_oracle(model, x, y, loss)
    flat = FlatParams.from_parameters(model.parameters())
    grads = PerSampleGradients(model, loss, max_batch=4)
    total = grads.weighted_sum(x, y, weight_rule("dpsgd", 0.5), out=flat.grads)
    assert total.sum is flat.grads
    weights = torch.tensor([SPEC["dpsgd"](float(n), 0.5, None) for n in expected.norm(dim=1)], dtype=torch.float64)
    assert torch.allclose(flat.grads, weights @ expected, rtol=0, atol=1e-10)
    assert torch.allclose(model[0].weight.grad.reshape(-1), flat.grads[: model[0].weight.numel()])


def test_empty_batch_and_frozen_parameters():
    model, x, y, loss = _problem("logreg", batch=5)
    model.bias.requires_grad_(False)
    grads = PerSampleGradients(model, loss)
    every = grads.per_sample(x, y)
    assert every.shape == (5, 650) and torch.all(every[:, 640:] == 0) and torch.any(every[:, :640] != 0)
    empty = grads.weighted_sum(x[:0], y[:0], weight_rule("nsgd", 1.0))
    assert empty.sum.shape == (650,) and torch.all(empty.sum == 0) and len(empty.norms) == 0


def test_layers_that_mix_samples_are_refused():
    loss = torch.nn.functional.cross_entropy
    batchnorm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Linear(6, 3))
    with pytest.raises(UsageError, match=r"1 \(BatchNorm1d\): normalizes with batch statistics.*GroupNorm"):
        PerSampleGradients(batchnorm, loss)
    instance = torch.nn.Sequential(torch.nn.Unflatten(1, (2, 2)), torch.nn.InstanceNorm1d(2, track_running_stats=True))
    with pytest.raises(UsageError, match="InstanceNorm1d"):
        PerSampleGradients(instance, loss)
    batchnorm.eval()  # running statistics: per sample
    grads = PerSampleGradients(batchnorm, loss)
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    assert grads.per_sample(x, y).shape == (3, 4 * 6 + 6 + 12 + 6 * 3 + 3)
    batchnorm.train()  # switched back after construction: refused at the next call
    with pytest.raises(UsageError, match="BatchNorm1d"):
        grads.per_sample(x, y)
    assert PerSampleGradients(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)), loss)


# -- noise and sampling (the released std under MPI: tests/test_privacy_dp_step.py) ---------------

def test_noise_shares_per_placement():
    assert GaussianNoise(2.0, 0.5, ranks=4, rank=3, placement="split").local_std == pytest.approx(0.5)
    assert GaussianNoise(2.0, 0.5, ranks=4, rank=1, placement="one", root=1).local_std == 1.0
    assert GaussianNoise(2.0, 0.5, ranks=4, rank=0, placement="one", root=1).local_std == 0.0
    assert GaussianNoise(2.0, 0.5, ranks=4, rank=2, placement="each").local_std == 1.0
    for kwargs, message in (({"placement": "all"}, "placement"), ({"root": 4, "ranks": 4}, "root 4"),
                            ({"clip": 0.0}, "clip > 0")):
        with pytest.raises(UsageError, match=message):
            GaussianNoise(**{"noise_multiplier": 1.0, "clip": 1.0, **kwargs})


def test_noise_unseeded_by_default_and_seeded_per_rank_with_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default must not warn
        a, b = GaussianNoise(1.0, 1.0), GaussianNoise(1.0, 1.0)
        assert not torch.equal(a.sample(torch.zeros(8)), b.sample(torch.zeros(8)))
    with pytest.warns(SeededNoiseWarning, match="NOT private"):
        first = [GaussianNoise(1.0, 1.0, ranks=2, rank=r, seed=3) for r in (0, 1)]
    with pytest.warns(SeededNoiseWarning):
        again = GaussianNoise(1.0, 1.0, ranks=2, rank=0, seed=3)
    draw = first[0].sample(torch.zeros(8, dtype=torch.float64))
    assert torch.equal(draw, again.sample(torch.zeros(8, dtype=torch.float64)))  # reproducible
    assert not torch.equal(draw, first[1].sample(torch.zeros(8, dtype=torch.float64)))  # own stream per rank
    assert not torch.equal(draw, first[0].sample(torch.zeros(8, dtype=torch.float64)))  # fresh each step
    buffer = np.zeros(20000, dtype=np.float32)
    assert first[0].add(buffer) is buffer and buffer.dtype == np.float32
    assert abs(buffer.std() - 1 / math.sqrt(2)) < 0.02  # "split" over 2 ranks


def test_poisson_sampling_rate_and_empty_batches():
    sampler = PoissonSampler(500, 0.04, rng=np.random.default_rng(0))
    sizes = [len(sampler.next()) for _ in range(2000)]
    assert sampler.expected_size == 20.0 and abs(np.mean(sizes) - 20.0) < 0.5 and np.var(sizes) > 15
    batch = sampler.next()
    assert batch.dtype == np.int64 and np.all(np.diff(batch) > 0) and batch.max() < 500
    tiny = PoissonSampler(10, 0.01, rng=np.random.default_rng(1))
    assert any(len(tiny.next()) == 0 for _ in range(20))
    for rate in (0.0, 1.5):
        with pytest.raises(UsageError, match="sample rate"):
            PoissonSampler(10, rate)
