"""Per-sample gradients with ``torch.func``: ``vmap(grad(loss of one sample))`` over the model's functional form.

:class:`PerSampleGradients` wraps a model and a loss ``loss(output, target)``
(mean over the batch, as the harness's ``loss_of``; a batch of one sample
gives that sample's loss). It gives either every per-sample gradient as one
``(B, numel)`` tensor, in the flat order of
``FlatParams.from_parameters(model.parameters())``, or, lighter on memory,
only the weighted sum ``sum_i w(||g_i||) g_i`` that a DP step needs. Both run
in *virtual batches* of at most ``max_batch`` samples per pass, so memory
is bounded by ``max_batch * numel`` whatever the (Poisson) batch size.

Two engines give the same numbers (to float rounding). When every trainable
parameter lies in an ``nn.Linear`` or an ``nn.Conv2d`` (zero padding, one
group) used once per forward, as in the harness's logreg, mlp and cnn,
:meth:`~PerSampleGradients.weighted_sum` runs *one* ordinary forward and one
backward of the summed loss per virtual batch, keeps each layer's input
``a_i`` and output gradient ``b_i``, and forms the per-sample norms and the
weighted sum from them in closed form: for a linear layer on vectors
``||g_i||^2 = ||a_i||^2 ||b_i||^2`` and ``sum_i w_i g_i = (w * B)^T A``, no
per-sample gradient is materialized (the "ghost norm" / book-keeping idea of
Opacus and of Bu et al.); a convolution's per-sample gradients are the
batched product of ``b_i`` with the unfolded input. Any other model (an
embedding, a norm layer with weights, a layer called twice) takes the
generic ``vmap`` engine, as :meth:`~PerSampleGradients.per_sample` always does.
On one CPU thread the closed form made the DP-SGD step 2-3x faster than the
``vmap`` engine and than Opacus (``python -m mpisgd.bench.dp_speed``).

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
from torch.nn.functional import unfold

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


def closed_form_layers(model: nn.Module):
    """The layers holding ``model``'s trainable parameters if all have closed-form per-sample gradients, else None.

    Closed form: ``nn.Linear``, and ``nn.Conv2d`` with numeric zero padding and
    one group; no parameter shared between layers.
    """
    layers, seen = [], set()
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        conv = type(module) is nn.Conv2d and module.groups == 1 and module.padding_mode == "zeros" \
            and not isinstance(module.padding, str)
        if not (type(module) is nn.Linear or conv) or any(id(p) in seen for p in own):
            return None
        seen.update(id(p) for p in own)
        layers.append(module)
    return layers


def _layer_terms(module, a, b):
    """``[(parameter, squared per-sample norms, add(w, flat view))]`` for the trainable parameters of ``module``.

    ``a``: the layer's input, ``b``: the gradient of the summed loss with
    respect to its output (sample i's own gradient: no layer mixes samples).
    ``add(w, view)`` adds ``sum_i w_i g_i`` to the parameter's flat view.
    """
    n = len(a)
    if type(module) is nn.Conv2d:  # g_i = b_i unfold(a_i)^T, materialized
        cols = unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)
        b = b.reshape(n, b.shape[1], -1)
        weight, bias = torch.bmm(b, cols.transpose(1, 2)).reshape(n, -1), b.sum(2)
    elif a.dim() == 2:  # linear on vectors: g_i = b_i a_i^T, never materialized
        bb = b.pow(2).sum(1)
        weight = (bb * a.pow(2).sum(1), lambda w, view: view.view(b.shape[1], -1).addmm_((b * w[:, None]).t(), a))
        bias = b
    else:  # linear on sequences: g_i = sum_t b_it a_it^T
        a, b = a.reshape(n, -1, a.shape[-1]), b.reshape(n, -1, b.shape[-1])
        weight, bias = torch.bmm(b.transpose(1, 2), a).reshape(n, -1), b.sum(1)
    terms = []
    for p, g in ((module.weight, weight), (module.bias, bias)):
        if p is None or not p.requires_grad:
            continue
        if isinstance(g, tuple):
            terms.append((p, *g))
        else:
            terms.append((p, torch.linalg.vector_norm(g, dim=1).pow(2), lambda w, view, g=g: view.addmv_(g.t(), w)))
    return terms


class WeightedSum(NamedTuple):
    """``sum``: ``sum_i w(||g_i||) g_i`` (flat); ``norms``: ``||g_i||``; ``losses``: each sample's loss."""

    sum: torch.Tensor
    norms: torch.Tensor
    losses: torch.Tensor


class PerSampleGradients:
    """Per-sample gradients of ``loss(model(x_i), y_i)`` with respect to ``model``'s parameters.

    ``max_batch``: most samples per pass (a virtual batch); None takes a
    whole batch at once. Frozen parameters (``requires_grad=False``) keep
    their place in the flat layout with a zero gradient. ``engine``: "closed
    form" or "vmap", the one :meth:`weighted_sum` uses (see the module).
    """

    def __init__(self, model: nn.Module, loss, *, max_batch: int = None):
        check_per_sample(model)
        if max_batch is not None and max_batch < 1:
            raise UsageError(f"max_batch must be >= 1, got {max_batch}")
        self.model, self.loss, self.max_batch = model, loss, max_batch
        self._norm_layers = [m for m in model.modules() if isinstance(m, _NORMS)]
        self.slots, offset = [], 0  # (name, offset, numel, trainable), in model.parameters() order
        self._place = {}  # id(parameter) -> (offset, numel)
        for name, p in model.named_parameters():
            self.slots.append((name, offset, p.numel(), p.requires_grad))
            self._place[id(p)] = (offset, p.numel())
            offset += p.numel()
        self.numel = offset
        self._grads = vmap(grad_and_value(self._sample_loss), in_dims=(None, None, 0, 0), randomness="different")
        self._layers = closed_form_layers(model)
        self.engine = "vmap" if self._layers is None else "closed form"
        self._losses = vmap(lambda output, y: loss(output.unsqueeze(0), y.unsqueeze(0)))  # each sample's loss

    def _sample_loss(self, trainable, constant, x, y):
        output = functional_call(self.model, (trainable, constant), (x.unsqueeze(0),))
        return self.loss(output, y.unsqueeze(0))

    def _batches(self, x, y):
        """The virtual batches ``(x, y)`` of at most ``max_batch`` samples."""
        if self._norm_layers:
            check_per_sample(self.model)  # switched to training mode since construction
        step = max(len(x) if self.max_batch is None else self.max_batch, 1)
        return [(x[start : start + step], y[start : start + step]) for start in range(0, len(x), step)]

    def _vmap(self, x, y):
        """(per-parameter gradients ``{name: (b, *shape)}``, losses ``(b,)``) of one virtual batch."""
        trainable, constant = {}, dict(self.model.named_buffers())
        for name, p in self.model.named_parameters():
            (trainable if p.requires_grad else constant)[name] = p.detach()
        return self._grads(trainable, constant, x, y)

    def _vmap_terms(self, x, y):
        """``([(offset, numel, squared norms, add(w, view))], losses)`` of one virtual batch, by ``vmap``."""
        grads, losses = self._vmap(x, y)
        terms = []
        for name, offset, n, trainable in self.slots:
            if trainable:
                g = grads[name].reshape(len(x), n)
                terms.append((offset, n, torch.linalg.vector_norm(g, dim=1).pow(2),
                              lambda w, view, g=g: view.addmv_(g.t(), w)))
        return terms, losses

    def _closed_form_terms(self, x, y):
        """The same as :meth:`_vmap_terms` from one forward and one backward; None if a layer ran other than once."""
        captured = []
        handles = [m.register_forward_hook(lambda m, i, o: captured.append((m, i[0].detach(), o)))
                   for m in self._layers]
        try:
            with torch.enable_grad():
                losses = self._losses(self.model(x), y)
                if sorted(map(id, (m for m, _, _ in captured))) != sorted(map(id, self._layers)):
                    return None
                outputs = [o for _, _, o in captured]
                backprops = torch.autograd.grad(losses.sum(), outputs, allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
        terms = []
        for (module, a, o), b in zip(captured, backprops):
            for p, squared, add in _layer_terms(module, a, torch.zeros_like(o) if b is None else b):
                terms.append((*self._place[id(p)], squared, add))
        return terms, losses.detach()

    def _like(self, *shape):
        p = next(self.model.parameters())
        return torch.zeros(*shape, dtype=p.dtype, device=p.device)

    def per_sample(self, x, y) -> torch.Tensor:
        """Every per-sample gradient: a ``(B, numel)`` tensor in the flat parameter order (by ``vmap``)."""
        out, start = self._like(len(x), self.numel), 0
        for xs, ys in self._batches(x, y):
            grads, _ = self._vmap(xs, ys)
            b = len(xs)
            for name, offset, n, trainable in self.slots:
                if trainable:
                    out[start : start + b, offset : offset + n] = grads[name].reshape(b, n)
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
        for xs, ys in self._batches(x, y):
            found = None if self._layers is None else self._closed_form_terms(xs, ys)
            with torch.no_grad():
                terms, loss = self._vmap_terms(xs, ys) if found is None else found
                norm = sum((squared for _, _, squared, _ in terms), self._like(len(xs))).sqrt()
                w = weight(norm).to(norm.dtype)
                for offset, n, _, add in terms:
                    add(w, total[offset : offset + n])
            norms.append(norm)
            losses.append(loss.detach())
        empty = self._like(0)
        return WeightedSum(total, torch.cat(norms) if norms else empty, torch.cat(losses) if losses else empty)
