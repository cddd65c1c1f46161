"""Per-sample gradients with ``torch.func``: ``vmap(grad(loss of one sample))`` over the model's functional form.

:class:`PerSampleGradients` wraps a model and a loss ``loss(output, target)``
(mean over the batch, as the harness's ``loss_of``; a batch of one sample
gives that sample's loss). It gives either every per-sample gradient as one
``(B, numel)`` tensor, in the flat order of
``FlatParams.from_parameters(model.parameters())``, or, lighter on memory,
only the weighted sum ``sum_i w(||g_i||) g_i`` that a DP step needs. Both run
in *virtual batches* of at most ``max_batch`` samples per ``vmap`` call, so
memory is bounded by ``max_batch * numel`` whatever the (Poisson) batch size.

Layers that mix the samples of a batch break per-sample gradients and are
refused before training (:func:`sample_mixing_layers`): BatchNorm (and
SyncBatchNorm) in training mode, which normalizes with batch statistics, and
InstanceNorm with ``track_running_stats`` in training mode, whose running
statistics average over the batch. A custom module that computes batch
statistics in its own ``forward`` cannot be detected. Dropout works (each
sample draws its own mask: ``randomness="different"``).

Example::

    import torch
    from mpisgd.privacy.clipping import weight_rule
    from mpisgd.privacy.per_sample import PerSampleGradients

    model = torch.nn.Linear(4, 3).double()
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randint(0, 3, (8,))
    grads = PerSampleGradients(model, torch.nn.functional.cross_entropy, max_batch=64)
    every = grads.per_sample(x, y)                       # (B, 15)
    total = grads.weighted_sum(x, y, weight_rule("psac", clip=1.0))
    print(every.shape, total.sum.shape, total.norms.shape, total.losses.shape)   # (8, 15), (15,), (8,), (8,)
"""

from typing import NamedTuple

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from ..errors import UsageError

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def sample_mixing_layers(model: nn.Module) -> list:
    """``["name (Type): why", ...]`` for the layers of ``model`` that mix samples as they are now."""
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, _NORMS) or not module.training:
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            found.append(f"{name or 'model'} ({type(module).__name__}): normalizes with batch statistics")
        elif module.track_running_stats:
            found.append(f"{name or 'model'} ({type(module).__name__}): running statistics average the batch")
    return found


def check_per_sample(model: nn.Module) -> None:
    """Raise UsageError if a layer of ``model`` mixes the samples of a batch."""
    found = sample_mixing_layers(model)
    if found:
        raise UsageError(
            "differential privacy needs per-sample gradients, and these layers mix the samples of a batch: "
            + "; ".join(found) + ". Use GroupNorm or LayerNorm instead (or freeze them: eval mode)"
        )


class WeightedSum(NamedTuple):
    """``sum``: ``sum_i w(||g_i||) g_i`` (flat); ``norms``: ``||g_i||``; ``losses``: each sample's loss."""

    sum: torch.Tensor
    norms: torch.Tensor
    losses: torch.Tensor


class PerSampleGradients:
    """Per-sample gradients of ``loss(model(x_i), y_i)`` with respect to ``model``'s parameters.

    ``max_batch``: most samples per ``vmap`` call (a virtual batch); None
    takes a whole batch at once. Frozen parameters (``requires_grad=False``)
    keep their place in the flat layout with a zero gradient.
    """

    def __init__(self, model: nn.Module, loss, *, max_batch: int = None):
        check_per_sample(model)
        if max_batch is not None and max_batch < 1:
            raise UsageError(f"max_batch must be >= 1, got {max_batch}")
        self.model, self.loss, self.max_batch = model, loss, max_batch
        self._norm_layers = [m for m in model.modules() if isinstance(m, _NORMS)]
        self.slots, offset = [], 0  # (name, offset, numel, trainable), in model.parameters() order
        for name, p in model.named_parameters():
            self.slots.append((name, offset, p.numel(), p.requires_grad))
            offset += p.numel()
        self.numel = offset
        self._grads = vmap(grad_and_value(self._sample_loss), in_dims=(None, None, 0, 0), randomness="different")

    def _sample_loss(self, trainable, constant, x, y):
        output = functional_call(self.model, (trainable, constant), (x.unsqueeze(0),))
        return self.loss(output, y.unsqueeze(0))

    def _chunks(self, x, y):
        """(per-parameter gradients ``{name: (b, *shape)}``, losses ``(b,)``) per virtual batch."""
        if self._norm_layers:
            check_per_sample(self.model)  # switched to training mode since construction
        trainable, constant = {}, dict(self.model.named_buffers())
        for name, p in self.model.named_parameters():
            (trainable if p.requires_grad else constant)[name] = p.detach()
        step = len(x) if self.max_batch is None else self.max_batch
        for start in range(0, len(x), max(step, 1)):
            yield self._grads(trainable, constant, x[start : start + step], y[start : start + step])

    def _flat_pieces(self, grads, b):
        """``(offset, numel, (b, numel) gradient)`` of the trainable parameters."""
        return [(offset, n, grads[name].reshape(b, n)) for name, offset, n, trainable in self.slots if trainable]

    def _like(self, *shape):
        p = next(self.model.parameters())
        return torch.zeros(*shape, dtype=p.dtype, device=p.device)

    def per_sample(self, x, y) -> torch.Tensor:
        """Every per-sample gradient: a ``(B, numel)`` tensor in the flat parameter order."""
        out, start = self._like(len(x), self.numel), 0
        for grads, losses in self._chunks(x, y):
            b = len(losses)
            for offset, n, g in self._flat_pieces(grads, b):
                out[start : start + b, offset : offset + n] = g
            start += b
        return out

    def weighted_sum(self, x, y, weight, out=None) -> WeightedSum:
        """``sum_i weight(||g_i||) g_i`` over the batch, accumulated virtual batch by virtual batch.

        ``weight``: a function of the norms (a rule of
        :mod:`mpisgd.privacy.clipping`). ``out``: a flat buffer to write the
        sum into (e.g. ``FlatParams.grads``); it is overwritten. An empty
        batch gives a zero sum.
        """
        total = self._like(self.numel) if out is None else out
        total.zero_()
        norms, losses = [], []
        with torch.no_grad():
            for grads, loss in self._chunks(x, y):
                b = len(loss)
                pieces = self._flat_pieces(grads, b)
                norm = sum(g.pow(2).sum(dim=1) for _, _, g in pieces).sqrt()
                w = weight(norm).to(norm.dtype)
                for offset, n, g in pieces:
                    total[offset : offset + n].add_(w @ g)
                norms.append(norm)
                losses.append(loss.detach())
        empty = self._like(0)
        return WeightedSum(total, torch.cat(norms) if norms else empty, torch.cat(losses) if losses else empty)
