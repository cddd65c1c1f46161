"""Policy evaluation of a small Markov chain as a Bellman-residual composition, generated offline.

A fixed policy on ``S`` states: true transition matrix ``P`` (rows from a flat
Dirichlet) and mean rewards ``r ~ U(0, 1)``, both from ``default_rng(seed)``.
Sample j (of m) is one observed transition per state, ``P_j[s, s'] = 1`` for
the sampled next state ``s' ~ P[s]``, and a noisy reward ``b_j = r + 0.1 N(0, I)``.
Value function ``x`` in R^S, discount ``gamma``:

    G_j(x) = [x; b_j + gamma P_j x] in R^{2S},   dG_j = [I; gamma P_j]
    F_i(u, v) = (u_i - v_i)^2, i = 1..S (n = S)
    f(x) = (1/S) ||x - bbar - gamma Pbar x||^2       (Pbar, bbar: the sample means)

f* = 0 at x* = (I - gamma Pbar)^{-1} bbar (Pbar is row-stochastic, so I - gamma Pbar is invertible).
"""

import numpy as np

from ...errors import UsageError
from .base import CompositionProblem


class BellmanResidual(CompositionProblem):
    """Policy evaluation: ``S`` states, ``m`` sampled transitions per state, discount ``gamma``."""

    schedule = {"eta": 0.05, "K": 400, "A": 8}

    def __init__(self, S: int = 10, m: int = 100, gamma: float = 0.8, seed: int = 0):
        if S < 1 or m < 1 or not 0 <= gamma < 1:
            raise UsageError(f"mdp needs S >= 1, m >= 1 and 0 <= gamma < 1, got S={S}, m={m}, gamma={gamma}")
        rng = np.random.default_rng(seed)
        true_p = rng.dirichlet(np.ones(S), size=S)
        rewards = rng.uniform(0.0, 1.0, S)
        nxt = np.array([[rng.choice(S, p=true_p[s]) for s in range(S)] for _ in range(m)])
        self.P = np.zeros((m, S, S))
        self.P[np.arange(m)[:, None], np.arange(S)[None, :], nxt] = 1.0
        self.b = rewards + 0.1 * rng.standard_normal((m, S))
        self.gamma = float(gamma)
        self.name = f"mdp:S={S},m={m},gamma={gamma:g},seed={seed}"
        self.dim, self.inner_dim, self.m, self.n = S, 2 * S, m, S
        self.Pbar, self.bbar = self.P.mean(axis=0), self.b.mean(axis=0)

    def inner_sum(self, x, idx):
        P = self.P[idx]
        return np.concatenate([P.shape[0] * x, self.b[idx].sum(axis=0) + self.gamma * (P.sum(axis=0) @ x)])

    def jacobian_t_sum(self, x, idx, u):
        P = self.P[idx]
        S = self.dim
        return P.shape[0] * u[:S] + self.gamma * (u[S:] @ P.sum(axis=0))

    def _states(self, idx):
        return np.arange(self.n)[idx]

    def outer_grad_sum(self, y, idx):
        S = self.dim
        states = self._states(idx)
        d = 2.0 * (y[states] - y[S + states])
        g = np.zeros(2 * S)
        np.add.at(g, states, d)
        np.add.at(g, S + states, -d)
        return g

    def outer_value_sum(self, y, idx):
        states = self._states(idx)
        d = y[states] - y[self.dim + states]
        return float(d @ d)

    def optimum(self):
        x = np.linalg.solve(np.eye(self.dim) - self.gamma * self.Pbar, self.bbar)
        return x, 0.0

    def gap(self, x) -> float:
        return self.value(x)
