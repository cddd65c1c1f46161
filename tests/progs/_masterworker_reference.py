"""Single-process numpy references of the master-worker EASGD algorithms (ALGORITHMS.md §3.1, §4.2).

Pure numpy: nothing of mpisgd is imported here. Each function simulates p
workers on their own quadratics ``f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i)``
(``quads[i] = (A_i, b_i)``) from their own starting points, and the center
x~ (sliced over the servers: ``slices[s]`` is server s's part) from its own
start, with plain SGD steps ``x <- x - lr grad`` (EAMSGD: the Nesterov box).
The only input from the MPI run is each server's log: the order in which it
handled the workers' messages, as ``(kind, worker, stamp)`` (kind
``request``, ``update``, ``leave``; easgd-dw adds ``close``, a period the
server closed, which a deadline may decide). A worker's messages reach a
server in the order they were sent, so its n-th ``request`` there belongs
to its n-th exchange; when a worker exchanges is the spec's (every ``period``
local steps), never read from the run. Workers are indexed 0..p-1 and
logged as ranks ``servers + i``. Each function returns ``history[i][t]``
(worker i's parameters after t local steps, t = 0: the start), ``finals[i]``
(the center as the worker left: what it ends holding) and the final center.
"""

import numpy as np


def _grad(quad, x):
    a, b = quad
    return a @ (x - b)


def _elastic_worker(quad, x, lr, steps, period, alpha, overlap, momentum, history):
    """Worker i of §3.1 (async box; EAMSGD box when momentum > 0), a generator: at each exchange it yields
    (None) for x~ as read (sent in), then yields d = alpha (x^i - x~) (x^i before the step with
    ``overlap``, the Lua order; after it otherwise, the paper's: the pull before the next gradient).
    The parameters (``history``) hold the look-ahead point x + delta v where the next gradient is taken."""
    x, v = np.array(x, dtype=np.float64), np.zeros(len(x))
    history.append(x.copy())
    for t in range(steps):
        due = t % period == 0 if overlap else (t + 1) % period == 0
        pre = x.copy()
        v = momentum * v
        y = x + v  # look-ahead
        g = _grad(quad, y)
        x, v = y - lr * g, v - lr * g
        if due:
            read = yield
            d = alpha * ((pre if overlap else x) - read)
            yield d
            x = x - d  # the elastic pull, outside the momentum
        history.append(x + momentum * v)


def _check_log(label, log, kinds):
    for kind, worker, _ in log:
        assert kind in kinds, f"{label}: unexpected event {kind!r} from {worker}"


def async_easgd(quads, starts, center, slices, logs, *, lr, steps, period, beta, overlap=False, momentum=0.0):
    """easgd-async / eamsgd-async (§3.1): each server answers REQUEST with its slice of x~ as it stands and
    adds each UPDATE d as it comes (x~ <- x~ + d). ``logs[s]``: server s's handling order."""
    p, servers = len(starts), len(slices)
    alpha = beta / p
    exchanges = sum(1 for t in range(steps) if (t % period == 0 if overlap else (t + 1) % period == 0))
    history = [[] for _ in range(p)]
    workers = [_elastic_worker(quads[i], starts[i], lr, steps, period, alpha, overlap, momentum, history[i])
               for i in range(p)]
    waiting = [next(w, "done") for w in workers]  # None: waiting for its first read
    c = [np.array(center[part], dtype=np.float64) for part in slices]
    reads = [[{} for _ in range(exchanges)] for _ in range(p)]  # reads[i][n][s]: x~ slice read at exchange n
    deltas = [[None] * exchanges for _ in range(p)]
    requests, updates = np.zeros((servers, p), int), np.zeros((servers, p), int)
    finals = [[None] * servers for _ in range(p)]
    at = [0] * servers
    for s in range(servers):
        _check_log(f"server {s}", logs[s], {"request", "update", "leave"})
    while any(at[s] < len(logs[s]) for s in range(servers)):
        moved = False
        for s in range(servers):
            while at[s] < len(logs[s]):
                kind, rank, _ = logs[s][at[s]]
                i = rank - servers
                if kind == "request":
                    n = requests[s, i]
                    assert n < exchanges, f"server {s}: worker {i} asked more than {exchanges} times"
                    reads[i][n][s] = c[s].copy()
                    requests[s, i] += 1
                elif kind == "update":
                    n = updates[s, i]
                    assert n < requests[s, i], f"server {s}: worker {i}'s update {n} came before its request"
                    if deltas[i][n] is None:
                        if len(reads[i][n]) < servers:
                            break  # another server has not answered this exchange yet: replay it first
                        read = np.empty(len(starts[i]))
                        for r, part in enumerate(slices):
                            read[part] = reads[i][n][r]
                        deltas[i][n] = workers[i].send(read)
                        waiting[i] = next(workers[i], "done")
                    c[s] = c[s] + deltas[i][n][slices[s]]
                    updates[s, i] += 1
                else:
                    finals[i][s] = c[s].copy()
                at[s] += 1
                moved = True
        assert moved, "the servers' logs are inconsistent (each waits for an exchange the other never answered)"
    assert (requests == exchanges).all() and (updates == exchanges).all(), (
        f"logged requests {requests.tolist()} / updates {updates.tolist()}, the spec gives {exchanges} each")
    for i in range(p):
        assert waiting[i] == "done" or next(workers[i], "done") == "done", f"worker {i} did not finish"
    return history, [np.concatenate(f) for f in finals], np.concatenate(c)


def _dw_worker(quad, x, lr, steps, period, alpha, history):
    """Worker i of easgd-dw (§4.2 with §3.1's exchange), a generator: at each exchange it yields its
    pre-step x^i (the report) and is sent x~_k (the reply, after its local step): x^i <- x^i - alpha (pre - x~_k)."""
    x = np.array(x, dtype=np.float64)
    history.append(x.copy())
    for t in range(steps):
        due = t % period == 0
        pre = x.copy()
        if due:
            read = yield pre
        x = x - lr * _grad(quad, x)
        if due:
            x = x - alpha * (pre - read)
        history.append(x.copy())


def _send(generator, value):
    try:
        return generator.send(value)
    except StopIteration:
        return None


def dynamic_weights(staleness, fresh, alive, decay):
    """§4.2 [reconstructed]: w_i = 0 without a report this period, else proportional to gamma^{s_i};
    sum = p_alive."""
    raw = {i: decay ** s for i, s in staleness.items() if i in fresh}
    total = sum(raw.values())
    return {i: alive * w / total for i, w in raw.items()} if total > 0 else {}


def plain_weights(staleness, fresh, alive, decay):
    """w_i = 1 for every worker's last report (EASGD's special case, taken literally)."""
    return {i: 1.0 for i in staleness}


def dynamic_weighting(quads, starts, center, log, *, lr, steps, period, beta, decay, weighting="dynamic"):
    """easgd-dw on one server (§4.2): period k collects reports (x^i before its step, labelled with the period
    the worker was last told); when it closes (every alive worker reported, or the deadline: the log's
    ``close``) each waiting worker gets x~_k, then x~_{k+1} = x~_k + alpha sum_i w_i (x^i - x~_k). Returns
    also the number of periods closed by the deadline and the reports that came late."""
    p, alpha = len(starts), beta / len(starts)
    rule = {"dynamic": dynamic_weights, "plain": plain_weights}[weighting]
    history = [[] for _ in range(p)]
    workers = [_dw_worker(quads[i], starts[i], lr, steps, period, alpha, history[i]) for i in range(p)]
    report = [next(w, None) for w in workers]  # each worker's next report
    c, k = np.array(center, dtype=np.float64), 0
    label, last, fresh, held, left = [0] * p, {}, set(), [], set()
    finals, by_deadline, late = [None] * p, 0, 0
    _check_log("server", log, {"request", "close", "leave"})
    first = 1  # one server (rank 0): worker i is rank 1 + i
    for e, (kind, rank, stamp) in enumerate(log):
        i = rank - first
        if kind == "request":
            assert report[i] is not None and i not in fresh, f"event {e}: worker {i} reported out of turn"
            assert stamp == label[i], f"event {e}: worker {i}'s report labelled {stamp}, the spec gives {label[i]}"
            late += label[i] < k
            last[i] = (report[i], label[i])
            fresh.add(i)
            held.append(i)
            if set(range(p)) - left <= fresh:  # every alive worker reported: the period closes at once
                assert e + 1 < len(log) and log[e + 1][0] == "close", f"event {e}: period {k} complete, not closed"
        elif kind == "close":
            assert stamp == k and held, f"event {e}: closing period {stamp}, the spec is at {k} with {held}"
            by_deadline += not set(range(p)) - left <= fresh
            for i in held:
                report[i] = _send(workers[i], c.copy())  # its next report (None: it has no more)
                label[i] = k + 1
            staleness = {i: k - lab for i, (_, lab) in last.items() if i not in left}
            weights = rule(staleness, fresh, p - len(left), decay)
            c = c + alpha * sum(weights[i] * (last[i][0] - c) for i in sorted(weights))
            k, fresh, held = k + 1, set(), []
        else:
            assert i not in held, f"event {e}: worker {i} left while waiting for a reply"
            left.add(i)
            finals[i] = c.copy()
    return history, finals, c, by_deadline, late
