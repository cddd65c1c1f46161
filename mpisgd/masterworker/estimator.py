"""The variance-reduced compositional gradient of AsyVRSC [reconstructed].

AsyVRSC (Shen, Xu, Liu, Guo, Ling, arXiv:1811.06396) was readable only as
an abstract. Its estimator here is **[reconstructed]** from the finite-sum
compositional SVRG of Lian, Wang and Liu (AISTATS 2017), ALGORITHMS.md §9.2.
This module is the ONE place that reconstruction lives: the sequential twin
(:mod:`.sequential`), AsyVRSC-Distributed and AsyVRSC-Shared all call
:func:`snapshot`, :class:`Sampler`, :func:`estimate` and :func:`update`, so a
reader of the paper can swap the rule here.

Epoch s, snapshot x~ (``Snapshot``; ``reduce`` sums partial sums over shards):

    G~ = G(x~) = (1/m) sum_j G_j(x~)                       pass 1 (inner sums)
    u~ = grad F(G~) = (1/n) sum_i grad F_i(G~)             pass 2 (needs G~)
    grad f(x~) = (1/m) sum_j dG_j(x~)^T u~                 pass 3 (needs u~)

Inner step k, sample (A_k mini-batch of size A from [m] with replacement, j_k in [m], i_k in [n]):

    G^_k = G~ + (1/A) (sum_{a in A_k} G_a(x_k) - sum_{a in A_k} G_a(x~))
    v_k  = dG_{j_k}(x_k)^T grad F_{i_k}(G^_k) - dG_{j_k}(x~)^T grad F_{i_k}(G~) + grad f(x~)
    x_{k+1} = x_k - eta v_k

At x_k = x~ the two first terms of v_k cancel exactly (same arithmetic), so
v_k = grad f(x~) bit for bit.

Bit for bit across implementations: :func:`snapshot` divides by m or n only
AFTER ``reduce``; with one contributor (or the others contributing exact
zeros) a reduce that sums returns the sequential value exactly. The sample
stream of worker w is ``default_rng([seed, w])``; worker 0's is the
sequential twin's.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError


@dataclass(frozen=True)
class Snapshot:
    """Epoch quantities at x~: ``x`` (x~), ``inner`` (G~ = G(x~)), ``outer_grad`` (grad F(G~)), ``grad`` (grad f(x~))."""

    x: np.ndarray
    inner: np.ndarray
    outer_grad: np.ndarray
    grad: np.ndarray


@dataclass(frozen=True)
class Sample:
    """One inner step's indices: ``batch`` (A_k, size A), ``j`` (j_k) and ``i`` (i_k), each an int array."""

    batch: np.ndarray
    j: np.ndarray
    i: np.ndarray


def _identity(array):
    return array


def shard(total: int, parts: int, index: int) -> slice:
    """The contiguous block ``index`` of ``parts`` near-equal blocks of range(total) (the first blocks are longer)."""
    if parts < 1 or not 0 <= index < parts:
        raise UsageError(f"shard {index} of {parts} does not exist")
    base, extra = divmod(total, parts)
    start = index * base + min(index, extra)
    return slice(start, start + base + (index < extra))


def snapshot(problem, x, inner_idx=None, outer_idx=None, reduce=None) -> Snapshot:
    """The snapshot at ``x`` (x~) from the partial sums over ``inner_idx`` (of [m]) and ``outer_idx`` (of [n]).

    ``reduce`` turns a partial sum into the sum over all shards (default: the
    identity, with the whole data as the shard; a distributed caller passes
    an all-reduce SUM). It is called three times, in the order of the passes.
    """
    reduce = reduce or _identity
    inner_idx = slice(0, problem.m) if inner_idx is None else inner_idx
    outer_idx = slice(0, problem.n) if outer_idx is None else outer_idx
    x = np.array(x, dtype=np.float64, copy=True)
    inner = reduce(problem.inner_sum(x, inner_idx)) / problem.m
    outer_grad = reduce(problem.outer_grad_sum(inner, outer_idx)) / problem.n
    grad = reduce(problem.jacobian_t_sum(x, inner_idx, outer_grad)) / problem.m
    return Snapshot(x, inner, outer_grad, grad)


class Sampler:
    """The sample stream of one worker: ``default_rng([seed, worker])``, A_k with replacement.

    Each :meth:`draw` takes, in this order, ``integers(0, m, A)``, ``integers(0, m, 1)``
    and ``integers(0, n, 1)`` from the stream.
    """

    def __init__(self, m: int, n: int, A: int, seed: int = 0, worker: int = 0):
        if A < 1 or m < 1 or n < 1:
            raise UsageError(f"sampler needs A, m, n >= 1, got A={A}, m={m}, n={n}")
        self.m, self.n, self.A = int(m), int(n), int(A)
        self.rng = np.random.default_rng([int(seed), int(worker)])

    def draw(self) -> Sample:
        rng = self.rng
        batch = rng.integers(0, self.m, self.A)
        return Sample(batch, rng.integers(0, self.m, 1), rng.integers(0, self.n, 1))


def estimate(problem, snap: Snapshot, x, sample: Sample) -> np.ndarray:
    """v_k: the variance-reduced estimate of grad f(x) (§9.2) with the indices of ``sample``."""
    batch = sample.batch
    inner = snap.inner + (problem.inner_sum(x, batch) - problem.inner_sum(snap.x, batch)) / len(batch)
    now = problem.jacobian_t_sum(x, sample.j, problem.outer_grad_sum(inner, sample.i))
    then = problem.jacobian_t_sum(snap.x, sample.j, problem.outer_grad_sum(snap.inner, sample.i))
    return now - then + snap.grad


def update(x: np.ndarray, v: np.ndarray, eta: float) -> np.ndarray:
    """x_{k+1} = x_k - eta v_k, in place on ``x`` (the one arithmetic every implementation uses)."""
    x -= eta * v
    return x
