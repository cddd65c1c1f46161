"""Per-sample clipping rules: a weight ``w(n)`` for a per-sample gradient of norm ``n``.

All four rules share one update (ALGORITHMS.md §10.1)::

    x_{t+1} = x_t - (eta / |B|) * ( sum_{i in B_t} w(||g_i||) g_i + N(0, sigma^2 C^2 I) )

and differ only in the weight ``w``. Each weighted gradient ``w(n) g`` has
norm at most ``C`` (the clip, the per-sample sensitivity), so the privacy
analysis (a subsampled Gaussian mechanism with noise multiplier sigma) is the
same for all of them.

Each rule is a plain function ``rule(n, clip, ...)`` of the norm(s) ``n``:
a float, a numpy array or a torch tensor (the same arithmetic works on all
three). It is finite for every ``n >= 0`` including ``n = 0``.
:func:`weight_rule` picks one by name and binds its constants::

    >>> w = weight_rule("psac", clip=1.0, r=0.01)
    >>> round(float(w(0.09)), 3)    # the peak of DP-PSAC's weight: C / (2 sqrt(r) - r)
    5.263
"""

import functools

import numpy as np

from ..errors import UsageError


def _at_least(n, floor: float):
    """``max(n, floor)`` elementwise, for floats, numpy arrays and torch tensors."""
    clamp = getattr(n, "clamp", None)  # torch tensors
    return clamp(min=floor) if clamp is not None else np.maximum(n, floor)


def dpsgd(n, clip: float):
    """DP-SGD, constant clipping (Abadi et al. 2016): ``w(n) = min(1, C/n)``.

    Written ``C / max(n, C)``: the same for n > 0, and 1 at n = 0 without a
    division by zero. Source: DP-PSAC's introduction (arXiv:2212.00328).
    """
    return clip / _at_least(n, clip)


def nsgd(n, clip: float, r: float = 0.01):
    """NSGD, normalization with a regularizer r: ``w(n) = C / (n + r)``.

    The paper form is ``g / (||g|| + r)``; scaled by C here so that every rule
    has sensitivity C. Monotone decreasing; ``w(0) = C/r``. The default
    r = 0.01 was not read from the NSGD paper: it is DP-PSAC's default, so
    that the rules compare at the same r.
    """
    return clip / (n + r)


def autos(n, clip: float, gamma: float = 0.01):
    """Auto-S, automatic clipping (Bu et al., arXiv:2206.07136): ``w(n) = C / (n + gamma)``, gamma = 0.01.

    The authors' optimizers use ``g / (||g|| + gamma)`` with noise std sigma
    (C = 1); scaled by C here. ``w(0) = C/gamma = 100 C``: the large weight on
    tiny gradients that DP-PSAC's abstract criticizes.
    """
    return clip / (n + gamma)


def psac(n, clip: float, r: float = 0.01):
    """DP-PSAC, per-sample adaptive clipping (Xia et al., AAAI 2023, arXiv:2212.00328).

    ``w(n) = C / (n + r / (n + r))``, r = 0.01. Provenance (ALGORITHMS.md
    §10.1): the paper's equation was not read; this is the parenthesization
    of a third-party JAX implementation that cites the paper (with its scale
    s = 1 and default r = 0.01), the one consistent with the abstract. A
    PyTorch implementation writes ``C / (n + (r/n + r))``, which sends the
    weight to 0 as n -> 0; it is not used.

    Properties: ``w(0) = C``; ``w(n) ~ C/n`` for large n; for r < 1 the
    weight rises to its peak ``C / (2 sqrt(r) - r)`` at ``n* = sqrt(r) - r``
    and then falls (non-monotone); for r >= 1 it is decreasing.
    ``n w(n) < C`` for all n.
    """
    return clip / (n + r / (n + r))


RULES = {"dpsgd": dpsgd, "nsgd": nsgd, "autos": autos, "psac": psac}
_CONSTANT = {"nsgd": "r", "autos": "gamma", "psac": "r"}  # the rule's second constant (``--dp-r``)


def weight_rule(name: str, clip: float = 1.0, r: float = None):
    """The rule ``name`` as a function of the norm alone: ``w = weight_rule("nsgd", 1.0, 0.1); w(n)``.

    ``r`` is the rule's regularizer (gamma for Auto-S); None keeps the
    rule's default, and DP-SGD takes none.
    """
    if name not in RULES:
        raise UsageError(f"unknown clipping rule {name!r}; choose from {', '.join(RULES)}")
    if not clip > 0:
        raise UsageError(f"the clip C must be > 0, got {clip}")
    rule, constant = RULES[name], _CONSTANT.get(name)
    if r is None or constant is None:
        if r is not None:
            raise UsageError(f"clipping rule {name!r} takes no r (got r={r})")
        return functools.partial(rule, clip=clip)
    if not r > 0:
        raise UsageError(f"{constant} of clipping rule {name!r} must be > 0, got {r}")
    return functools.partial(rule, clip=clip, **{constant: r})
