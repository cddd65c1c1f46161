"""Composition problems from batched torch callables: the torch wrapper of AsyVRSC's problems.

``inner_fn(x, idx)`` returns the rows ``G_j(x)`` for ``j`` in ``idx`` as a
``(len(idx), q)`` tensor; ``outer_fn(y, idx)`` returns ``F_i(y)`` for ``i`` in
``idx`` as a ``(len(idx),)`` tensor (``idx``: a LongTensor; ``x``, ``y``: float64
tensors). The sums and their vector-Jacobian products come from autograd
(``dG^T u`` is one backward pass, the Jacobian is never formed); the problem
speaks numpy float64 like every other :mod:`.base` problem, so the estimator
and the AsyVRSC algorithms use it unchanged.

Example (the mean-variance portfolio, see :func:`torch_portfolio`)::

    >>> import numpy, torch
    >>> R = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    >>> problem = torch_portfolio(R)
    >>> problem.inner_sum(numpy.ones(2), numpy.array([0, 2])).tolist()
    [2.0, 2.0, 3.0]
"""

import numpy as np
import torch

from ...errors import UsageError
from .base import CompositionProblem


class TorchComposition(CompositionProblem):
    """A composition problem from ``inner_fn`` (G_j rows) and ``outer_fn`` (F_i values); see the module docstring.

    ``x0`` is the start (default 0); ``optimum`` an optional known ``(x*, f*)``;
    ``schedule`` the compositional-SVRG defaults ``{"eta", "K", "A"}``.
    """

    def __init__(self, inner_fn, outer_fn, dim, inner_dim, m, n, name="torch", x0=None, optimum=None, schedule=None):
        if min(dim, inner_dim, m, n) < 1:
            raise UsageError(f"torch composition needs dim, inner_dim, m, n >= 1, got {dim}, {inner_dim}, {m}, {n}")
        self.inner_fn, self.outer_fn, self.name = inner_fn, outer_fn, name
        self.dim, self.inner_dim, self.m, self.n = int(dim), int(inner_dim), int(m), int(n)
        self._x0 = None if x0 is None else np.array(x0, dtype=np.float64)
        self._optimum = optimum
        self.schedule = dict(schedule or {"eta": 1e-3, "K": 2 * self.m, "A": 8})

    @property
    def x0(self):
        return np.zeros(self.dim) if self._x0 is None else self._x0.copy()

    @staticmethod
    def _index(idx, total):
        return torch.arange(total)[idx] if isinstance(idx, slice) else torch.as_tensor(np.asarray(idx), dtype=torch.long)

    @staticmethod
    def _tensor(array, grad=False):
        return torch.tensor(np.asarray(array, dtype=np.float64), dtype=torch.float64, requires_grad=grad)

    def inner_sum(self, x, idx):
        with torch.no_grad():
            return self.inner_fn(self._tensor(x), self._index(idx, self.m)).sum(0).numpy()

    def jacobian_t_sum(self, x, idx, u):
        xt = self._tensor(x, grad=True)
        rows = self.inner_fn(xt, self._index(idx, self.m)).sum(0)
        (g,) = torch.autograd.grad(rows, xt, self._tensor(u), allow_unused=True)
        return np.zeros(self.dim) if g is None else g.numpy()

    def outer_grad_sum(self, y, idx):
        yt = self._tensor(y, grad=True)
        (g,) = torch.autograd.grad(self.outer_fn(yt, self._index(idx, self.n)).sum(), yt, allow_unused=True)
        return np.zeros(self.inner_dim) if g is None else g.numpy()

    def outer_value_sum(self, y, idx):
        with torch.no_grad():
            return float(self.outer_fn(self._tensor(y), self._index(idx, self.n)).sum())

    def optimum(self):
        if self._optimum is None:
            return super().optimum()
        x, f = self._optimum
        return np.array(x, dtype=np.float64), float(f)


def torch_portfolio(returns, lam: float = 0.0, optimum=None) -> TorchComposition:
    """The mean-variance portfolio (§9.1) written as torch callables: ``G_j(x) = [x; <r_j, x>]``, ``F_i`` as in :mod:`.portfolio`."""
    R = torch.as_tensor(returns, dtype=torch.float64)
    n, N = R.shape

    def inner_fn(x, idx):
        rows = R[idx]
        return torch.cat([x.expand(len(idx), N), (rows @ x)[:, None]], dim=1)

    def outer_fn(y, idx):
        w, z = y[:-1], y[-1]
        s = R[idx] @ w - z
        return -z + s * s + 0.5 * lam * (w @ w)

    return TorchComposition(inner_fn, outer_fn, N, N + 1, n, n, name="torch-portfolio", optimum=optimum)
