"""Asynchronous EASGD and EAMSGD oracles (ALGORITHMS.md §3.4) under mpiexec, numpy only.

Usage: easgd_async.py MODE [ARGS]
  oracle SERVERS OVERLAP [MUTATION]  conservation of sum_i x^i + x~ (against a log of the local steps) and
                                     convergence of x~ to the minimizer of the mean quadratic; MUTATION
                                     (exchange: the exchange is a no-op; server: updates are not applied)
                                     must make an oracle fail
  sequential                         one worker per pair of ranks: easgd-async equals a sequential
                                     simulation of the spec bit for bit, eamsgd-async with momentum 0
                                     equals easgd-async bit for bit, EAMSGD with momentum 0.9 follows the spec's box
"""

import sys

import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.comm import tags
from mpisgd.masterworker import AsyncElasticAveraging, AsyncElasticMomentum

comm = world()
mode = sys.argv[1]
LR = 0.1


def train(algorithm, problem, x, steps, log=None, trajectory=None, pace=None):
    """The caller's loop: gradient, then the step between the algorithm's hooks (plain SGD, from the spec).
    ``pace``: the workers' communicator, for a barrier after every step (a test-only pacing that keeps
    the asynchronous workers in step, so that each one contributes as often)."""
    for _ in range(steps):
        g = problem.grad(x)
        algorithm.before_step()
        x -= LR * g
        if log is not None:
            log += LR * g
        algorithm.after_step()
        if pace is not None:
            pace.Barrier()
        if trajectory is not None:
            trajectory.append((algorithm.iterate if hasattr(algorithm, "iterate") else x).copy())


if mode == "oracle":
    servers, overlap = int(sys.argv[2]), sys.argv[3] == "overlap"
    mutation = sys.argv[4] if len(sys.argv) > 4 else None
    if mutation == "exchange":
        AsyncElasticAveraging.exchange = lambda self, reference: None
        AsyncElasticAveraging.pull = lambda self, reference: [self.endpoint.wait_reply(s) for s in self.server_ranks]
    elif mutation == "server":
        handle = AsyncElasticAveraging.handle
        AsyncElasticAveraging.handle = lambda self, m: handle(self, m) if m.tag != tags.UPDATE else None
    workers = comm.Split(0 if comm.rank < servers else 1, comm.rank)

    def phase(identical):
        """Workers from different starts; True: the same objective; False: their own minimizers (paced)."""
        problem = Quadratic(workers, seed=3, identical=identical, shared_curvature=True)
        x = np.random.default_rng(comm.rank).standard_normal(6) * 3  # every rank starts elsewhere
        start, log = x.copy(), np.zeros(6)
        easgd = AsyncElasticAveraging(FlatParams(x), comm=comm, servers=servers, period=2, overlap=overlap,
                                      init="keep", timeout=30)
        if easgd.is_server:
            easgd.serve()
        else:
            train(easgd, problem, x, 400, log=log, pace=workers)
            final = x.copy()  # x^i before finish() makes it the center
            easgd.finish()
        result = (start, None if easgd.is_server else final, log, x.copy(), problem.minimizer)
        easgd.close()
        return comm.gather(result, 0), easgd

    for identical in (True, False):
        everything, easgd = phase(identical)
        if comm.rank != 0:
            continue
        starts, finals, logs, ends, minima = zip(*everything)
        center0 = np.concatenate([starts[s][easgd.slice_of(s)] for s in range(servers)])
        center = ends[0]  # serve() leaves the whole center in the server's parameters
        before = sum(starts[servers:]) + center0
        after = sum(finals[servers:]) + center
        expected = before - sum(logs[servers:])
        gap = np.abs(after - expected).max()
        assert gap < 1e-10, f"sum of x^i + x~ not conserved: off by {gap:.3g}"
        # each worker ends holding x~ as it was when it left: the last to leave, the final one
        assert any(np.array_equal(end, center) for end in ends[servers:]), "no worker ended holding x~"
        error = np.linalg.norm(center - minima[servers])
        print(f"identical={identical}: conserved to {gap:.1e}, |x~ - x*| = {error:.1e}", flush=True)
        # one objective: every x^i and x~ reach x*. Their own minimizers: x~ reaches the minimizer of the
        # mean objective up to a jitter of about lr |g_i| (the workers' updates interleave in varying order)
        tolerance = 1e-8 if identical else 0.2
        assert error < tolerance, f"center did not converge: |x~ - x*| = {error:.3g}"
        assert all(np.abs(end - center).max() < tolerance for end in ends[servers:]), "a worker ended elsewhere"
    no_torch()
    done(comm)

elif mode == "sequential":
    pair = comm.Split(comm.rank // 2, comm.rank)  # independent jobs: a server and one worker each
    overlap = comm.rank // 2 % 2 == 1
    problem = Quadratic(pair, seed=4)
    dim, steps, period, beta = 6, 40, 3, 0.9
    x0, c0 = np.linspace(-2, 2, dim), np.linspace(3, 1, dim)

    def run(cls, **options):
        x = (c0 if pair.rank == 0 else x0).copy()
        algorithm = cls(FlatParams(x), comm=pair, period=period, overlap=overlap, init="keep", timeout=30,
                        **options)
        trajectory = []
        if algorithm.is_server:
            algorithm.serve()
        else:
            train(algorithm, problem, x, steps, trajectory=trajectory)
            algorithm.finish()
        algorithm.close()
        return pair.bcast(np.array(trajectory), root=1), pair.bcast(x, root=0)

    def spec(momentum=0.0):
        """ALGORITHMS.md §3.1 (async box, EAMSGD box) for one worker, written out sequentially."""
        grad = pair.bcast(problem.grad if pair.rank == 1 else None, root=1)
        x, c, v, out = x0.copy(), c0.copy(), np.zeros(dim), []
        for t in range(steps):
            pre = x.copy()
            if momentum:
                v = momentum * v
                y = x + v
                g = grad(y)
                x = y - LR * g
                v = v - LR * g
            else:
                x -= LR * grad(x)
            if (overlap and t % period == 0) or (not overlap and (t + 1) % period == 0):
                d = beta * ((pre if overlap else x) - c)  # alpha = beta / 1
                c += d
                x -= d
            out.append(x.copy())
        return np.array(out), c

    plain, center = run(AsyncElasticAveraging)
    expected, expected_center = spec()
    assert np.array_equal(plain, expected), "easgd-async differs from the spec's sequential loop"
    assert np.array_equal(center, expected_center), "the server's center differs from the spec"
    still, center0 = run(AsyncElasticMomentum, local_momentum=0.0)
    assert np.array_equal(still, plain) and np.array_equal(center0, center), "EAMSGD(0) != easgd-async"
    moving, center9 = run(AsyncElasticMomentum, local_momentum=0.9)
    expected, expected_center = spec(momentum=0.9)
    assert np.abs(moving - expected).max() < 1e-12, np.abs(moving - expected).max()
    assert np.abs(center9 - expected_center).max() < 1e-12
    assert np.abs(moving - plain).max() > 1e-3  # the momentum did something
    no_torch()
    done(comm)
