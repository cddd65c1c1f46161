"""EASGD with dynamic weighting (ALGORITHMS.md §4.4 [reconstructed]) under mpiexec: server rank 0, numpy only.

Usage: easgd_dw.py MODE
  equal   no failure: easgd-dw (both weightings) equals synchronous EASGD (mpisgd.collective) on the workers
  silent  the last worker falls silent after a few exchanges: dynamic weighting's center still reaches the
          minimizer of the other workers' mean objective; plain weighting is pulled toward the frozen worker
  return  the last worker is silent longer than the timeout, then comes back: it is reset to the center
"""

import sys
import time

import numpy as np
from _common import Quadratic, done, no_torch, world

from mpisgd import FlatParams
from mpisgd.collective import ElasticAveraging
from mpisgd.masterworker import DynamicWeighting

comm = world()
mode = sys.argv[1]
workers = comm.Split(0 if comm.rank == 0 else 1, comm.rank)
is_worker = comm.rank > 0
problem = Quadratic(workers, seed=6, shared_curvature=True)  # the workers' objectives (rank 0's unused)
LR, PERIOD, START = 0.1, 2, np.linspace(4, -4, 6)
SILENT = comm.size - 1  # the worker that falls silent


def train(algorithm, x, steps, trajectory=None, silent_at=None):
    """The caller's loop: gradient, then a plain SGD step between the algorithm's hooks."""
    for step in range(steps):
        if step == silent_at:
            algorithm.silent = True
        g = problem.grad(x)
        algorithm.before_step()
        x -= LR * g
        algorithm.after_step()
        if trajectory is not None:
            trajectory.append(x.copy())


def dw(steps, trajectory=None, silent_at=None, **options):
    """One easgd-dw run from START; returns the algorithm (the server's center is its parameters)."""
    x = START.copy()
    algorithm = DynamicWeighting(FlatParams(x), comm=comm, period=PERIOD, **options)
    if algorithm.is_server:
        algorithm.serve()
    else:
        train(algorithm, x, steps, trajectory, silent_at if comm.rank == SILENT else None)
        algorithm.finish()
    algorithm.close()
    return algorithm, x


if mode == "equal":
    for weighting in ("dynamic", "plain"):
        trajectory = []
        algorithm, x = dw(60, trajectory, weighting=weighting, deadline=20.0, timeout=40.0)
        center = comm.bcast(x if comm.rank == 0 else None, root=0)
        if is_worker:
            assert algorithm.statistics()["exchanges"] == 30
            y, reference = START.copy(), []
            easgd = ElasticAveraging(FlatParams(y), comm=workers, period=PERIOD, moving_rate=0.9)
            train(easgd, y, 60, reference)
            gap = np.abs(np.array(trajectory) - np.array(reference)).max()
            assert gap < 1e-12, f"{weighting}: x^i differs from synchronous EASGD by {gap:.3g}"
            assert np.abs(center - easgd.center).max() < 1e-12, f"{weighting}: x~ differs from synchronous EASGD"
            assert np.array_equal(x, center), "a worker did not end holding the center"
        else:
            stats = algorithm.statistics()
            assert stats["periods"] == 30 and stats["closed_by_deadline"] == 0 and stats["late"] == 0, stats

elif mode == "silent":
    others = problem.b if comm.rank not in (0, SILENT) else None
    target = np.mean([b for b in comm.allgather(others) if b is not None], axis=0)  # the others' minimizer
    centers = {}
    for weighting in ("dynamic", "plain"):
        began = time.time()
        algorithm, x = dw(300, silent_at=6, weighting=weighting, deadline=0.05, timeout=1.5)
        assert time.time() - began < 30
        frozen = comm.bcast(algorithm.pre if comm.rank == SILENT else None, root=SILENT)  # its last report
        centers[weighting] = comm.bcast(x if comm.rank == 0 else None, root=0)
        if comm.rank == 0:
            report = algorithm.statistics()
            assert report["lost"] == {SILENT: "silent for more than 1.5 s"}, report
            assert report["left"] == list(range(1, SILENT)) and report["closed_by_deadline"] > 0, report
    if comm.rank == 0:
        error = np.linalg.norm(centers["dynamic"] - target)
        bias = np.linalg.norm(centers["plain"] - target)
        print(f"dynamic: |x~ - x*| = {error:.2e}; plain: {bias:.2e}", flush=True)
        assert error < 1e-6, f"dynamic weighting's center did not converge: {error:.3g}"
        assert bias > 0.1, f"plain weighting was not pulled away: {bias:.3g}"
        assert np.linalg.norm(centers["plain"] - frozen) < np.linalg.norm(target - frozen), "not toward the frozen x"

elif mode == "return":
    x = START.copy()
    algorithm = DynamicWeighting(FlatParams(x), comm=comm, period=1, deadline=0.05, timeout=1.0)
    if algorithm.is_server:
        algorithm.serve()
        stats = algorithm.statistics()
        assert stats["resets"] == 1 and stats["lost"] == {} and stats["left"] == list(range(1, comm.size)), stats
    else:
        began, step = time.time(), 0
        while step < 40 or (comm.rank != SILENT and time.time() - began < 3.5):  # the others outlast its silence
            if comm.rank == SILENT and step == 10:
                algorithm.silent = True
                time.sleep(2.0)  # silent past the timeout: the server counts it lost
                algorithm.silent = False
            g = problem.grad(x)
            algorithm.before_step()
            x -= LR * g
            algorithm.after_step()
            if comm.rank == SILENT and step == 10:
                assert algorithm.resets == 1 and np.array_equal(x, algorithm.read), "not reset to the center"
            step += 1
        assert algorithm.resets == (1 if comm.rank == SILENT else 0)
        algorithm.finish()
    algorithm.close()
no_torch()
done(comm)
