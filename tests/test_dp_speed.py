"""The DP step benchmark (mpisgd.bench.dp_speed) in its quick mode, and the closed-form engine it times.

No timing is asserted (a shared machine is too noisy): the report's shape,
and that all three variants trained. The closed-form engine of
``PerSampleGradients.weighted_sum`` is checked against one backward() per
sample on layers the harness's models do not cover (strided and dilated
convolutions, linear layers on sequences, frozen weights, a layer called
twice, which must fall back to vmap).
"""

import json

import pytest
import torch

from mpisgd.bench.dp_speed import VARIANTS, compare, main
from mpisgd.privacy.clipping import weight_rule
from mpisgd.privacy.per_sample import PerSampleGradients

pytest.importorskip("opacus")


def test_quick_compare_reports_and_trains(capsys):
    main(["--quick"])
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "mlp" and report["batch_size"] == 64 and report["dataset"] == "digits"
    assert report["sample_rate"] == pytest.approx(64 / 1437, rel=0.01)
    for name in VARIANTS:
        assert report[name]["steps_per_s"] > 0
        assert report[name]["accuracy"] > 0.3  # ten classes: chance is 0.1
    rate = {name: report[name]["steps_per_s"] for name in VARIANTS}
    assert report["steps_mpisgd_over_opacus"] == pytest.approx(rate["mpisgd"] / rate["opacus"])
    assert report["dp_over_plain_mpisgd"] == pytest.approx(rate["plain"] / rate["mpisgd"])


def test_compare_cnn_steps_and_threads():
    threads = torch.get_num_threads()
    report = compare("cnn", 128, steps=6, seed=1, rounds=3, threads=1)
    assert report["steps"] == 6 and report["rounds"] == 3 and report["epochs"] == pytest.approx(6 * 128 / 1437, rel=0.01)
    assert all(report[name]["steps_per_s"] > 0 for name in VARIANTS)
    assert torch.get_num_threads() == threads  # restored


class _Twice(torch.nn.Module):
    """One linear layer used twice: no closed form, vmap takes over."""

    def __init__(self):
        super().__init__()
        self.inner, self.out = torch.nn.Linear(12, 12), torch.nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.inner(torch.tanh(self.inner(x)))))


def _models():
    conv = torch.nn.Sequential(torch.nn.Unflatten(1, (2, 3, 2)), torch.nn.Conv2d(2, 4, 2, stride=2, padding=2,
                               dilation=2), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 2, 3))
    sequence = torch.nn.Sequential(torch.nn.Unflatten(1, (4, 3)), torch.nn.Linear(3, 5), torch.nn.Tanh(),
                                   torch.nn.Flatten(), torch.nn.Linear(20, 3))
    frozen = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    frozen[0].weight.requires_grad_(False)
    frozen[2].bias.requires_grad_(False)
    return {"conv": conv, "sequence": sequence, "frozen": frozen, "twice": _Twice()}


@pytest.mark.parametrize("name", ["conv", "sequence", "frozen", "twice"])
def test_closed_form_engine_equals_a_backward_loop(name):
    torch.manual_seed(3)
    model = _models()[name].double()
    x, y = torch.rand(11, 12, dtype=torch.float64), torch.randint(0, 3, (11,))
    loss = torch.nn.functional.cross_entropy
    rows, losses = [], []
    for i in range(len(x)):  # the oracle: one backward() per sample
        model.zero_grad(set_to_none=True)
        value = loss(model(x[i : i + 1]), y[i : i + 1])
        value.backward()
        losses.append(value.detach())
        rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                               for p in model.parameters()]))
    expected = torch.stack(rows)
    clip = float(expected.norm(dim=1).median())
    model.zero_grad(set_to_none=True)
    grads = PerSampleGradients(model, loss, max_batch=4)
    assert grads.engine == "closed form"
    total = grads.weighted_sum(x, y, weight_rule("dpsgd", clip))
    weights = torch.clamp(clip / expected.norm(dim=1), max=1.0)
    assert torch.allclose(total.sum, weights @ expected, rtol=0, atol=1e-12)
    assert torch.allclose(total.norms, expected.norm(dim=1), rtol=0, atol=1e-12)
    assert torch.allclose(total.losses, torch.stack(losses), rtol=0, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())  # the model's .grad is left alone
