"""FDA, federated dynamic averaging (Theologitis et al., arXiv:2405.20988).

Local SGD that averages the models only when their spread is large
(ALGORITHMS.md §11, from the reference code's naive and linear strategies).
Every step each rank measures its drift since the last average,
``d_i = x_i - x_sync``, and one all-reduce of one or two scalars estimates
the variance of the models, ``mean_i |x_i - mean_j x_j|^2``:

- ``naive``:  ``mean_i |d_i|^2``
- ``linear``: ``mean_i |d_i|^2 - (mean_i <u, d_i>)^2`` with ``u`` the unit
  vector of the last global update (a fixed random unit vector before the
  first average). Since ``|mean d|^2 >= <u, mean d>^2`` it never
  underestimates the true variance, and it is tighter than ``naive``.

When the estimate exceeds ``threshold`` (Θ) the models are averaged (one
all-reduce of the parameters). Θ = 0 averages after every step that moved
the models; Θ = ∞ never averages. ``finish()`` averages once so every rank
ends with the same model.
"""

import math

import numpy as np

from ..algorithm import Algorithm, Option, non_negative, one_of, register


@register
class FederatedDynamicAveraging(Algorithm):
    name = "fda"
    summary = "FDA: average the models only when their estimated variance exceeds a threshold"
    options = {
        "threshold": Option(0.5, "average when the estimated model variance exceeds this (Theta)", non_negative),
        "estimator": Option("linear", "variance estimator: naive or linear", one_of("naive", "linear")),
    }
    state_buffers = ("anchor", "direction")
    state_fields = ("syncs",)

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        backend, params = self.flat.backend, self.flat.params
        self.anchor = backend.copy(params)
        self.drift = backend.zeros_like(params)
        start = np.random.default_rng(12345).standard_normal(len(params))  # the same on every rank
        self.direction = backend.from_numpy(start / np.linalg.norm(start), params)
        self.syncs = 0
        self.last_estimate = 0.0

    def estimate(self) -> float:
        """The variance estimate for the current models (one small all-reduce)."""
        backend = self.flat.backend
        self.drift[...] = self.flat.params
        self.drift -= self.anchor
        local = [backend.dot(self.drift, self.drift)]
        if self.estimator == "linear":
            local.append(backend.dot(self.direction, self.drift))
        values = np.array(local, dtype=np.float64)
        self.comm.allreduce(values, average=True)
        return float(values[0] - (values[1] ** 2 if self.estimator == "linear" else 0.0))

    def average(self) -> None:
        backend, params = self.flat.backend, self.flat.params
        self.comm.allreduce(params, average=True)
        self.drift[...] = params
        self.drift -= self.anchor  # the global update of this round
        norm = math.sqrt(backend.dot(self.drift, self.drift))
        if norm > 0:
            self.direction[...] = self.drift
            backend.scale(self.direction, 1.0 / norm)
        self.anchor[...] = params
        self.syncs += 1

    def after_step(self) -> None:
        super().after_step()
        self.last_estimate = self.estimate()
        if self.last_estimate > self.threshold:
            self.average()

    def finish(self) -> None:
        self.average()

    def statistics(self) -> dict:
        return {**super().statistics(), "syncs": self.syncs}
