"""Single-process numpy reference of AsyVRSC-Distributed under a recorded arrival order (issue 11).

Written from ALGORITHMS.md §9.1-9.3 (the mean-variance portfolio in composition form, the
variance-reduced compositional estimator of §9.2 [reconstructed], the master-worker loop of §9.3)
and the delay bound tau of the option text ("the master holds a fast worker's update while applying
it would push another's past it"). It imports numpy only, never mpisgd.

Portfolio (lam = 0), returns r_1..r_n (rows of ``returns``), m = n:
    G_j(x) = [x; <r_j, x>],  dG_j^T u = u[:N] + u[N] r_j,
    grad F_i(w, y) = [2 s r_i; -1 - 2 s],  s = <r_i, w> - y.
Sample stream of worker w: numpy ``default_rng([seed, w])``; each draw takes integers(0, m, A) (the
mini-batch A_k, with replacement), then integers(0, m, 1) (j_k), then integers(0, n, 1) (i_k).
"""

import numpy as np


def _inner(R, x, rows):
    """sum over ``rows`` of G_j(x)."""
    return np.concatenate([len(rows) * x, [(R[rows] @ x).sum()]])


def _jacobian_t(R, rows, u):
    """sum over ``rows`` of dG_j^T u."""
    return len(rows) * u[:-1] + u[-1] * R[rows].sum(axis=0)


def _outer_grad(R, y, rows):
    """sum over ``rows`` of grad F_i(y)."""
    w, z = y[:-1], y[-1]
    s = R[rows] @ w - z
    return np.concatenate([2.0 * (s @ R[rows]), [-len(rows) - 2.0 * s.sum()]])


def snapshot(R, x):
    """(x~, G~ = G(x~), u~ = grad F(G~), grad f(x~) = dG(x~)^T u~), §9.2."""
    every = np.arange(len(R))
    inner = _inner(R, x, every) / len(R)
    u = _outer_grad(R, inner, every) / len(R)
    return x.copy(), inner, u, _jacobian_t(R, every, u) / len(R)


def estimate(R, snap, x, batch, j, i):
    """v_k of §9.2 at the worker's (possibly stale) x."""
    x_tilde, inner, u, grad = snap
    g_hat = inner + (_inner(R, x, batch) - _inner(R, x_tilde, batch)) / len(batch)
    return (_jacobian_t(R, [j], _outer_grad(R, g_hat, [i]))
            - _jacobian_t(R, [j], _outer_grad(R, inner, [i])) + grad)


class _Worker:
    """Worker w: the x (and its version) it was last sent, its epoch and snapshot, its sample stream."""

    def __init__(self, R, w, x, seed, A):
        self.R, self.A = R, A
        self.rng = np.random.default_rng([seed, w])
        self.x, self.version, self.epoch = x.copy(), 0, 1
        self.snap = snapshot(R, self.x)

    def update(self):
        """Its next message: v_k with its next sample, at its x and snapshot."""
        m = n = len(self.R)
        batch = self.rng.integers(0, m, self.A)
        j, i = self.rng.integers(0, m, 1)[0], self.rng.integers(0, n, 1)[0]
        return estimate(self.R, self.snap, self.x, batch, j, i)

    def reply(self, x, version, epoch):
        self.x, self.version = x.copy(), version
        if epoch != self.epoch:  # a new epoch: the snapshot at the x~ it was sent
            self.epoch, self.snap = epoch, snapshot(self.R, self.x)


def distributed(returns, x0, log, *, eta, K, A, epochs, seed, workers, tau=0):
    """Replay the master's log (events (kind, rank, stamp); worker w is rank 1 + w). Returns the applied
    updates as [(worker, x after)], the delays and the number of dropped updates."""
    R = np.asarray(returns, dtype=np.float64)
    tau = tau or workers - 1
    x = np.array(x0, dtype=np.float64)
    crew = [_Worker(R, w, x, seed, A) for w in range(workers)]
    version, epoch, count, stopping = 0, 1, 0, epochs == 0
    base = [0] * workers  # the version of the x each worker's next update is computed on
    held, applied, delays, dropped, left = [], [], [], 0, set()

    def within(w):
        others = sorted(base[o] for o in range(workers) if o != w)
        return all(version + k - b <= tau for k, b in enumerate(others, start=1))

    def apply(w, v, stamp):
        nonlocal version, epoch, count, stopping, base, held, dropped, x
        delays.append(version - stamp)
        x = x - eta * v
        version, count = version + 1, count + 1
        applied.append((w, x.copy()))
        if count == K:  # the epoch ends: the updates held are dropped, every worker restarts from x~
            epoch, count = epoch + 1, 0
            stopping = epoch > epochs
            base = [version] * workers
            for o, _, _ in held:
                dropped += 1
                crew[o].reply(x, version, epoch)
            held = []
        base[w] = version
        crew[w].reply(x, version, epoch)

    for e, (kind, rank, stamp) in enumerate(log):
        w = rank - 1
        assert 0 <= w < workers, f"event {e}: rank {rank} is no worker"
        if kind == "leave":
            assert stopping and w not in left, f"event {e}: worker {w} left before the end"
            left.add(w)
            continue
        assert kind == "request", f"event {e}: unexpected event {kind!r}"
        assert w not in left and all(o != w for o, _, _ in held), f"event {e}: worker {w} sent out of turn"
        assert stamp == crew[w].version, f"event {e}: worker {w}'s stamp {stamp}, the spec gives {crew[w].version}"
        v = crew[w].update()
        if crew[w].epoch != epoch or stopping:  # computed on an earlier snapshot: dropped, answered with x~
            dropped += 1
            crew[w].reply(x, version, epoch)
            continue
        held.append((w, v, stamp))
        progress = True
        while progress and held:
            progress = False
            for item in held:
                if within(item[0]):
                    held.remove(item)
                    apply(*item)
                    progress = True
                    break
    assert len(applied) == epochs * K, f"{len(applied)} updates replayed, the spec gives {epochs * K}"
    assert left == set(range(workers)), f"only workers {sorted(left)} left"
    assert max(delays, default=0) <= tau, f"a delay {max(delays)} above tau {tau}"
    return applied, delays, dropped
