"""Single-process numpy references of the gossip algorithms (ALGORITHMS.md §6, §7, §8), written from the spec.

Pure numpy: nothing of mpisgd is imported here. Each function simulates all
p workers of one algorithm on their own quadratics ``f_i(x) = 1/2 (x - b_i)^T
A_i (x - b_i)`` (``quads[i] = (A_i, b_i)``) from their own starting points,
with plain SGD steps ``x <- x - lr * grad`` taken with the gradient computed
before the step's communication. The only input from the MPI run is its
recorded schedule: per rank a list of ``(step, kind, peer, stamp, fragment)``
events (``mpisgd.gossip.base.Event``), i.e. the random choices and message
timings, never a model value. The schedule is validated against the spec
(peers are neighbours, one choice per gossip step, messages matched to their
senders) before it is replayed. Each function returns ``history[i][t]``:
rank i's model after t local steps (``t = 0``: the start).
"""

import numpy as np


def _grad(quad, x):
    a, b = quad
    return a @ (x - b)


def neighbours(topology: str, p: int) -> list:
    """The neighbour sets of ``ring``, ``path`` (0 - 1 - ... - p-1) and ``full`` (undirected) on p ranks."""
    if topology == "full" or p <= 2:
        return [sorted(set(range(p)) - {i}) for i in range(p)]
    if topology == "ring":
        return [sorted({(i - 1) % p, (i + 1) % p}) for i in range(p)]
    if topology == "path":
        return [[j for j in (i - 1, i + 1) if 0 <= j < p] for i in range(p)]
    raise ValueError(topology)


def _events(record, kind):
    return [e for e in record if e[1] == kind]


# -- §6.1: Gossiping SGD (pull / push) and Elastic Gossip, synchronous rounds ---------------------------------
def pairwise(variant, quads, starts, lr, steps, records, topology, *, period=1, moving_rate=0.5):
    """``variant``: "pull" / "push" (Gossiping SGD) or "elastic". Replays each rank's recorded peer choice q_i."""
    p = len(starts)
    graph = neighbours(topology, p)
    choices = [{} for _ in range(p)]
    for i, record in enumerate(records):
        assert all(e[1] == "choose" for e in record), f"rank {i}: unexpected events {record[:3]}"
        for step, _, peer, stamp, _ in record:
            assert step % period == 0 and step == stamp and step not in choices[i], f"rank {i}: bad choice {step}"
            assert peer == -1 or peer in graph[i], f"rank {i} chose {peer}, not a neighbour in {topology}"
            choices[i][step] = peer
        gossip_steps = {t for t in range(steps) if t % period == 0}
        assert set(choices[i]) == gossip_steps, f"rank {i}: choices at {sorted(choices[i])}, not every gossip step"
    x = [np.array(s, dtype=np.float64) for s in starts]
    history = [[v.copy()] for v in x]
    for t in range(steps):
        pre = [v.copy() for v in x]  # x_i^t: the models exchanged, and where the gradients are taken
        x = [pre[i] - lr * _grad(quads[i], pre[i]) for i in range(p)]
        if t % period == 0:
            q = [choices[i][t] for i in range(p)]
            for i in range(p):
                requesters = [j for j in range(p) if q[j] == i]  # R_i = {j : q_j = i}
                if variant == "elastic":
                    group = sorted(set(requesters) | ({q[i]} if q[i] >= 0 else set()))  # P_i = R_i ∪ {q_i}
                    u = moving_rate * sum((pre[i] - pre[j] for j in group), np.zeros_like(pre[i]))
                elif variant == "pull":
                    u = (pre[i] - pre[q[i]]) / 2 if q[i] >= 0 else 0.0  # only the initiator moves
                else:  # push: x_i <- (x_i + sum_{j in R_i} x_j) / (1 + |R_i|)
                    u = pre[i] - (pre[i] + sum((pre[j] for j in requesters), np.zeros_like(pre[i]))) / (
                        1 + len(requesters))
                x[i] = x[i] - u  # the correction after the optimizer step
        for i in range(p):
            history[i].append(x[i].copy())
    return history


# -- §6.2: AD-PSGD, atomic pairwise averages between active and passive workers --------------------------------
def adpsgd(quads, starts, lr, steps, records, topology):
    """Even ranks active, odd passive. An average is identified by (active rank, its step): the active logs
    ("average", passive, passive's step), the passive ("serve", active, active's step). Returns the
    history and, per rank, its model after leaving (late requests served at step ``steps``)."""
    p = len(starts)
    graph = neighbours(topology, p)
    timeline = []  # per rank: ops ("grad",), ("joint", key), ("apply",), ("snap",)
    partner = {}
    for i, record in enumerate(records):
        ops = []
        if i % 2 == 0:  # active: one average per step with a passive neighbour
            averages = _events(record, "average")
            assert len(averages) == len(record), f"active rank {i} logged {record[:3]}"
            assert [e[0] for e in averages] == list(range(steps)), f"active rank {i}: averages at {averages}"
            for t, _, peer, stamp, _ in averages:
                assert peer in graph[i] and peer % 2 == 1, f"active rank {i} averaged with {peer}"
                partner.setdefault((i, t), {})["active"] = (peer, stamp)
        else:  # passive: serves requests between its own steps and while leaving
            assert len(_events(record, "serve")) == len(record), f"passive rank {i} logged {record[:3]}"
            for s, _, active, stamp, _ in record:
                assert active in graph[i] and active % 2 == 0, f"passive rank {i} served {active}"
                assert "passive" not in partner.get((active, stamp), {}), f"request {(active, stamp)} served twice"
                partner.setdefault((active, stamp), {})["passive"] = (i, s)
        for t in range(steps + 1):
            if t < steps:
                ops.append(("grad",))
            for step, kind, peer, stamp, _ in record:
                if step == t:
                    ops.append(("joint", (i, t) if kind == "average" else (peer, stamp)))
            if t < steps:
                ops += [("apply",), ("snap",)]
        timeline.append(ops)
    for (active, t), ends in partner.items():
        assert set(ends) == {"active", "passive"}, f"average {(active, t)} logged by one side only: {ends}"
        (passive, reply_step), (server, served_at) = ends["active"], ends["passive"]
        assert passive == server and reply_step == served_at, f"average {(active, t)}: {ends}"
    x = [np.array(s, dtype=np.float64) for s in starts]
    history = [[v.copy()] for v in x]
    g = [None] * p
    at = [0] * p
    while any(at[i] < len(timeline[i]) for i in range(p)):
        moved = False
        for i in range(p):
            while at[i] < len(timeline[i]):
                op = timeline[i][at[i]]
                if op[0] == "grad":
                    g[i] = _grad(quads[i], x[i])
                elif op[0] == "apply":
                    x[i] = x[i] - lr * g[i]
                elif op[0] == "snap":
                    history[i].append(x[i].copy())
                else:
                    active, _ = op[1]
                    j = partner[op[1]]["active"][0] if i == active else active
                    if at[j] >= len(timeline[j]) or timeline[j][at[j]] != op:
                        break  # the partner has not reached this average yet
                    x[i] = x[j] = (x[i] + x[j]) / 2  # atomic: both take the midpoint
                    at[j] += 1
                at[i] += 1
                moved = True
        assert moved, f"the recorded AD-PSGD schedule cannot be replayed (stuck at {at})"
    return history, [v.copy() for v in x]


# -- §8: DivShare, fragments of the model sent to J random neighbours ------------------------------------------
def fragments(numel, count, seed):
    """One permutation of the indices from the shared seed, cut into equal parts (the last takes the rest)."""
    order = np.random.default_rng(seed).permutation(numel)
    size = numel // count
    return [order[f * size:(f + 1) * size] if f < count - 1 else order[f * size:] for f in range(count)]


def divshare(quads, starts, lr, steps, records, topology, *, count, peers, period, seed):
    """Every ``period`` (H) steps each rank sends each of its ``count`` (Ω) fragments to ``peers`` (J)
    neighbours and averages per coordinate with the copies it received (the recorded "fragment" events:
    which sender, stamped with which step, which fragment): the sender's model right after that step."""
    p = len(starts)
    graph = neighbours(topology, p)
    parts = fragments(len(starts[0]), count, seed)
    for i, record in enumerate(records):
        sends = _events(record, "send")
        for t in range(1, steps + 1):
            now = [(peer, f) for step, _, peer, _, f in sends if step == t]
            for f in range(count):
                chosen = [peer for peer, g in now if g == f] if t % period == 0 else []
                expected = min(peers, len(graph[i])) if t % period == 0 else 0
                assert len(chosen) == expected == len(set(chosen)) and set(chosen) <= set(graph[i]), (
                    f"rank {i} step {t}: fragment {f} sent to {chosen}, not {expected} distinct neighbours")
        newest = {}
        for t, _, sender, stamp, f in _events(record, "fragment"):
            assert t % period == 0, f"rank {i} aggregated at step {t}"
            assert (stamp, "send", i, stamp, f) in {tuple(e) for e in records[sender]}, (
                f"rank {i} used fragment {f} of rank {sender} stamped {stamp}, which was never sent to it")
            assert newest.get((sender, f), (-1, -1))[0] < stamp and newest.get((sender, f), (-1, -1))[1] < t, (
                f"rank {i}: fragment {f} of rank {sender} stamped {stamp} used at step {t} after a newer copy")
            newest[(sender, f)] = (stamp, t)
    x = [np.array(s, dtype=np.float64) for s in starts]
    history = [[v.copy()] for v in x]
    shared = [{} for _ in range(p)]  # shared[i][t]: rank i's model when it shared at step t (before averaging)
    t_of, stepped, waiting = [0] * p, [None] * p, {}  # stepped[i]: the model after the gradient step t_of[i] + 1
    while any(t < steps for t in t_of):
        moved = False
        for i in range(p):
            while t_of[i] < steps:
                t = t_of[i] + 1
                if stepped[i] is None:  # the local step, then sharing: depends on nobody
                    stepped[i] = x[i] - lr * _grad(quads[i], x[i])
                    if t % period == 0:
                        shared[i][t] = stepped[i].copy()
                    moved = True
                used = [(sender, stamp, f) for step, kind, sender, stamp, f in records[i]
                        if kind == "fragment" and step == t]
                waiting[i] = [(sender, stamp) for sender, stamp, _ in used if stamp not in shared[sender]]
                if waiting[i]:
                    break  # a sender has not shared that step yet
                y = stepped[i]
                if t % period == 0:  # averaging with the copies received (the newest per sender and fragment)
                    total, copies = y.copy(), np.ones_like(y)
                    for sender, stamp, f in used:
                        total[parts[f]] += shared[sender][stamp][parts[f]]
                        copies[parts[f]] += 1
                    y = total / copies
                x[i], stepped[i], t_of[i] = y, None, t
                history[i].append(y.copy())
                moved = True
        assert moved, (f"the recorded DivShare schedule cannot be replayed (stuck at steps {t_of}, "
                       f"waiting for (sender, step): {waiting})")
    return history


# -- §7: Swift, wait-free: send to every neighbour each step, average whatever has arrived ---------------------
def mixing_rows(graph, kind):
    """``rows[i] = {j: w_ij}`` over i and its neighbours, from the degrees d: ``uniform`` ``1/(d_i + 1)``;
    ``metropolis`` ``w_ij = 1/(1 + max(d_i, d_j))``, ``w_ii = 1 - sum_j w_ij``."""
    degree = [len(peers) for peers in graph]
    rows = []
    for i, peers in enumerate(graph):
        if kind == "uniform":
            row = {j: 1.0 / (degree[i] + 1) for j in peers + [i]}
        elif kind == "metropolis":
            row = {j: 1.0 / (1 + max(degree[i], degree[j])) for j in peers}
            row[i] = 1.0 - sum(row.values())
        else:
            raise ValueError(kind)
        rows.append(row)
    return rows


def _swift_schedule(records, graph, steps, period, mode):
    """Validates the recorded Swift schedule against §7 and returns ``used[i][t] = {j: s}``: the neighbours whose
    model x_j^s (sent at j's step s) rank i averages with at its step t (standard mode: every neighbour heard
    from so far, with its newest model)."""
    used, sent = [], [{tuple(e) for e in _events(record, "send")} for record in records]
    for i, record in enumerate(records):
        assert {e[1] for e in record} <= {"send", "average", "stored"}, f"rank {i}: unexpected events {record[:3]}"
        sends = _events(record, "send")
        for t in range(steps):  # every step, the model to every neighbour
            to = sorted(peer for step, _, peer, stamp, _ in sends if step == t and stamp == t)
            assert to == graph[i], f"rank {i} step {t}: sent to {to}, not to its neighbours {graph[i]}"
        assert len(sends) == steps * len(graph[i]), f"rank {i}: {len(sends)} sends in {steps} steps"
        newest, used_i = {}, {}
        for t in range(steps):
            fresh = {}
            for step, _, peer, stamp, _ in _events(record, "average"):
                if step != t:
                    continue
                assert t % period == 0, f"rank {i} averaged at step {t}, not a multiple of the period {period}"
                assert peer in graph[i], f"rank {i} averaged with {peer}, not a neighbour in the graph"
                assert peer not in fresh, f"rank {i} step {t}: two models of rank {peer} in one average"
                assert (stamp, "send", i, stamp, None) in sent[peer], (
                    f"rank {i} averaged with a model of rank {peer} stamped {stamp}, which it never sent to {i}")
                assert stamp > newest.get(peer, -1), (
                    f"rank {i} step {t}: model of rank {peer} stamped {stamp}, not newer than {newest.get(peer)}")
                fresh[peer] = stamp
            for step, _, peer, stamp, _ in _events(record, "stored"):
                if step == t:  # a silent neighbour counted with its newest model
                    assert mode == "standard" and peer not in fresh and newest.get(peer) == stamp, (
                        f"rank {i} step {t}: stored model of rank {peer} stamped {stamp}; newest {newest.get(peer)}")
            newest.update(fresh)
            if t % period == 0:
                used_i[t] = dict(newest) if mode == "standard" else fresh
        used.append(used_i)
    return used


def swift(quads, starts, lr, steps, records, topology, *, mode="memory-efficient", weights="metropolis",
          boost=False, period=1):
    """Every ``period`` steps rank i averages, before its optimizer step, with the models ``used[i][t]``
    (weights ``w_ij``): ``x <- (1 - sum_{j used} w_ij) x + sum_{j used} w_ij x_j``, or with ``boost``
    ``x <- (w_ii x + sum_{j used} w_ij x_j) / wb``, ``wb = w_ii + sum_{j used} w_ij`` (on neighbourhood-uniform
    weights ``(#used + 1)/(deg + 1)``); then ``x <- x - lr * grad``, the gradient at the model before the average.
    A model sent at step s is the sender's model at the start of its step s (before its own average)."""
    p = len(starts)
    graph = neighbours(topology, p)
    w = mixing_rows(graph, weights)
    used = _swift_schedule(records, graph, steps, period, mode)
    history = [[np.array(s, dtype=np.float64)] for s in starts]
    while any(len(h) <= steps for h in history):
        moved = False
        for i in range(p):
            while len(history[i]) <= steps:
                t, x = len(history[i]) - 1, history[i][-1]
                models = used[i].get(t, {})
                if any(len(history[j]) <= s for j, s in models.items()):
                    break  # a sender has not reached that step yet
                mixed = x
                if t % period == 0:
                    if boost:
                        wb = w[i][i] + sum(w[i][j] for j in models)
                        mixed = (w[i][i] * x + sum((w[i][j] * history[j][s] for j, s in models.items()),
                                                   np.zeros_like(x))) / wb
                    else:
                        mixed = (1 - sum(w[i][j] for j in models)) * x + sum(
                            (w[i][j] * history[j][s] for j, s in models.items()), np.zeros_like(x))
                history[i].append(mixed - lr * _grad(quads[i], x))
                moved = True
        assert moved, f"the recorded Swift schedule cannot be replayed (stuck at steps {[len(h) - 1 for h in history]})"
    return history
