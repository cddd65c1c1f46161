"""The interface of a composition problem ``min_x f(x) = F(G(x))`` as finite sums.

``G(x) = (1/m) sum_j G_j(x)`` (the inner map, values in R^q) and
``F(y) = (1/n) sum_i F_i(y)`` (the outer function). Every oracle is a SUM over
an index set ``idx`` (an integer array, repeats allowed, or a ``slice``), so
one code serves the whole data (``slice(0, m)``) and a worker's shard; the
caller divides by ``m`` or ``n``. Arrays are float64 numpy vectors.

A problem has:

- ``name``, ``dim`` (size of x), ``inner_dim`` (q), ``m`` (inner terms), ``n`` (outer terms);
- ``inner_sum(x, idx)`` = sum_{j in idx} G_j(x), shape (q,);
- ``jacobian_t_sum(x, idx, u)`` = sum_{j in idx} dG_j(x)^T u, shape (dim,) (the
  Jacobian is never formed);
- ``outer_grad_sum(y, idx)`` = sum_{i in idx} grad F_i(y), shape (q,);
- ``outer_value_sum(y, idx)`` = sum_{i in idx} F_i(y), a float;
- ``value(x)`` = f(x), ``gradient(x)`` = grad f(x) = dG(x)^T grad F(G(x)),
  ``optimum()`` -> (x*, f*), ``gap(x)`` = f(x) - f* and ``x0`` (the start).
- ``schedule``: tuned compositional-SVRG defaults ``{"eta", "K", "A"}`` for it.
"""

import numpy as np

from ...errors import UsageError


def count(idx, total: int) -> int:
    """Number of terms an index set selects (a slice of range(total), or an array)."""
    if isinstance(idx, slice):
        return len(range(*idx.indices(total)))
    return len(idx)


class CompositionProblem:
    """Base class: the exact value and gradient built from the sums (subclasses may do better)."""

    name = "composition"
    dim = 0
    inner_dim = 0
    m = 0
    n = 0
    schedule = {"eta": 1e-3, "K": None, "A": 8}

    @property
    def x0(self) -> np.ndarray:
        """The documented deterministic start: x0 = 0."""
        return np.zeros(self.dim)

    def inner_sum(self, x, idx):
        raise NotImplementedError

    def jacobian_t_sum(self, x, idx, u):
        raise NotImplementedError

    def outer_grad_sum(self, y, idx):
        raise NotImplementedError

    def outer_value_sum(self, y, idx):
        raise NotImplementedError

    def inner(self, x):
        """G(x) on the whole data."""
        return self.inner_sum(x, slice(0, self.m)) / self.m

    def value(self, x) -> float:
        """f(x) = F(G(x)), exact."""
        return float(self.outer_value_sum(self.inner(x), slice(0, self.n)) / self.n)

    def gradient(self, x) -> np.ndarray:
        """grad f(x) = (1/m) sum_j dG_j(x)^T [(1/n) sum_i grad F_i(G(x))], exact."""
        u = self.outer_grad_sum(self.inner(x), slice(0, self.n)) / self.n
        return self.jacobian_t_sum(x, slice(0, self.m), u) / self.m

    def optimum(self):
        """(x*, f*): the minimizer and the minimum."""
        raise UsageError(f"problem {self.name!r} has no known optimum")

    def gap(self, x) -> float:
        """f(x) - f* (subclasses with a quadratic f compute it without cancellation)."""
        return self.value(x) - self.optimum()[1]

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} dim={self.dim} q={self.inner_dim} m={self.m} n={self.n}>"
