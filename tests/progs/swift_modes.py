"""Swift's weights, modes and boost (ALGORITHMS.md §7) against oracles written from the spec.

The program keeps the ranks in step (a test-only synchronization: send, wait for the
expected messages, ``mix``, barrier), so every average is a known function of the
models sent; the expected values are computed here from the gathered models and the
spec's formulas, never from the class under test. Run with 4 ranks.
"""

import time

import numpy as np
from _common import done, gather, world

from mpisgd import FlatParams, UsageError
from mpisgd.comm import Messenger, tags
from mpisgd.gossip import Swift

comm = world()
p, rank = comm.size, comm.rank
assert p == 4, "written for 4 ranks"
STAR = {0: [1, 2, 3], 1: [0], 2: [0], 3: [0]}  # centre 0
PATH = {0: [1], 1: [0, 2], 2: [1, 3], 3: [2]}  # 0 - 1 - 2 - 3
GRAPHS = {"star": STAR, "path": PATH}


def spec_matrix(graph, kind):
    """W from the spec: metropolis 1/(1 + max(d_i, d_j)); uniform 1/(d_i + 1); swift on a star or a
    path = the highest-degree ranks give 1/(deg + 1) to their edges, the others keep the rest."""
    w = np.zeros((p, p))
    for i, nbrs in graph.items():
        for j in nbrs:
            d_i, d_j = len(nbrs), len(graph[j])
            w[i, j] = 1 / (d_i + 1) if kind == "uniform" else 1 / (1 + max(d_i, d_j))
        w[i, i] = 1 - w[i].sum()
    return w


def start(seed):
    return np.random.default_rng(seed * 100 + rank).standard_normal(8)


def round_(swift, senders, graph):
    """Ranks in `senders` send their model; each rank waits for what its senders-neighbours sent,
    then mixes it. Returns every rank's sent model (gathered)."""
    host = swift.model_to_host()
    if rank in senders:
        for peer in graph[rank]:
            swift.messenger.send(peer, tags.MODEL, host, header=swift.stamp())
    expected = len([j for j in graph[rank] if j in senders])
    inbox, deadline = {}, time.time() + 30
    while len(inbox) < expected:
        assert time.time() < deadline, f"only {len(inbox)} of {expected} messages arrived"
        swift.progress()
        inbox.update(Messenger.newest(swift.messenger.receive()))
        time.sleep(1e-4)
    sent = gather(comm, host)
    swift.mix(inbox)
    comm.Barrier()
    return sent


def leave(swift):
    swift.leave()


# 1. standard mode, lr 0, every neighbour delivering: each round is x <- W x with the spec's W, and the
#    models reach the plain average (metropolis, swift) or the (d_i + 1)-weighted one (uniform)
for name, graph in GRAPHS.items():
    degrees = np.array([len(graph[i]) for i in range(p)])
    for kind in ("metropolis", "swift", "uniform"):
        x = start(1)
        models = gather(comm, x)
        mean = models.mean(axis=0)
        weighted = (degrees + 1) @ models / (degrees + 1).sum()  # uniform's stationary distribution
        w = spec_matrix(graph, kind)
        swift = Swift(FlatParams(x), comm=comm, init="keep", topology=name, weights=kind, mode="standard")
        for step in range(80):
            models = w @ models
            round_(swift, set(range(p)), graph)
            assert np.abs(x - models[rank]).max() < 1e-12, (name, kind, step)
        leave(swift)
        target = weighted if kind == "uniform" else mean
        assert np.abs(x - target).max() < 1e-6, (name, kind, np.abs(x - target).max())
        assert np.abs(weighted - mean).max() > 1e-2  # the two consensus values are told apart

# 2. a silent neighbour: standard mode uses its stored model, memory-efficient mode leaves it out
for mode in ("standard", "memory-efficient"):
    x = start(2)
    w = spec_matrix(STAR, "metropolis")
    swift = Swift(FlatParams(x), comm=comm, init="keep", topology="star", mode=mode)
    first = round_(swift, {0, 1, 2, 3}, STAR)
    before = gather(comm, x)
    second = round_(swift, {0, 1, 2}, STAR)  # rank 3 is silent
    assert np.abs(second - before).max() == 0
    if rank == 0:
        others = second.copy()
        if mode == "standard":
            others[3] = first[3]  # rank 3's stored model: what it sent in the first round
            expected = w[0] @ others
        else:
            expected = (1 - w[0, 1] - w[0, 2]) * before[0] + w[0, 1] * second[1] + w[0, 2] * second[2]
        assert np.abs(x - expected).max() < 1e-12, (mode, np.abs(x - expected).max())
        assert np.abs(w[0] @ second - expected).max() > 1e-3  # rank 3's stored model ≠ its current one
        assert set(swift.last_weights) == ({0, 1, 2, 3} if mode == "standard" else {0, 1, 2})
    else:
        assert np.abs(x - (w[rank] @ second)).max() < 1e-12
    leave(swift)

# 3. weight boost on a controlled arrival pattern (path 0 - 1 - 2 - 3, rank 2 silent):
#    wb = (#received + 1)/(deg + 1), x <- ((1 - sum_all w_j)/wb) x + sum_received (w_j/wb) x_j
for kind, boost in (("uniform", True), ("uniform", False), ("metropolis", True)):
    x = start(3)
    swift = Swift(FlatParams(x), comm=comm, init="keep", topology="path", weights=kind,
                  mode="memory-efficient", boost=boost)
    senders = {0, 1, 3}
    sent = round_(swift, senders, PATH)
    w = spec_matrix(PATH, kind)
    heard = [j for j in PATH[rank] if j in senders]
    if boost and kind == "uniform":
        wb = (len(heard) + 1) / (len(PATH[rank]) + 1)
        self_weight = (1 - sum(w[rank, j] for j in PATH[rank])) / wb
    elif boost:  # non-uniform weights: wb = the weights of the ranks heard from, self included
        wb = w[rank, rank] + sum(w[rank, j] for j in heard)
        self_weight = w[rank, rank] / wb
    else:
        wb, self_weight = 1.0, 1 - sum(w[rank, j] for j in heard)
    expected = self_weight * sent[rank] + sum(w[rank, j] / wb * sent[j] for j in heard)
    assert np.abs(x - expected).max() < 1e-12, (kind, boost, rank, np.abs(x - expected).max())
    if boost and kind == "uniform" and rank == 1:  # heard from 0 only: the midpoint of x_0 and x_1
        assert np.abs(x - (sent[0] + sent[1]) / 2).max() < 1e-12
    leave(swift)

# 4. bad combinations fail on every rank at construction
for options, message in (({"boost": True, "mode": "standard"}, "boost applies to mode=memory-efficient only"),
                         ({"topology": "exponential"}, "metropolis weights need an undirected graph"),
                         ({"weights": "max"}, "must be one of")):
    try:
        Swift(FlatParams(np.zeros(3)), comm=comm, **options)
    except UsageError as error:
        assert message in str(error), error
    else:
        raise AssertionError(f"{options} was accepted")
done(comm)
