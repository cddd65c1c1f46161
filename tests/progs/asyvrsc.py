"""AsyVRSC-Distributed oracles under mpiexec (ALGORITHMS.md §9.5).  Usage: asyvrsc.py MODE [PROBLEM EPOCHS].

snapshot  the snapshot summed over the workers' shards equals the sequential one to rounding, its
          gradient is grad f(x~) in closed form (-rbar + (2 Sigma + lam I) x~), and the estimator at x~ is it
oracle    one worker: the run equals sequential compositional SVRG bit for bit (x and every gap);
          the mutation (the master ignores the updates) breaks that oracle
converge  f - f* falls by at least 1e6 within EPOCHS epochs; every applied update's delay is recorded
          and is at most p - 1; dropped updates are at most p - 1 per epoch
"""

import sys

import numpy as np
from _common import done, world

from mpisgd.masterworker import AsyVRSCDistributed
from mpisgd.masterworker.estimator import Sampler, estimate, snapshot
from mpisgd.masterworker.problems import get_problem
from mpisgd.masterworker.sequential import Schedule, compositional_svrg

comm = world()
mode = sys.argv[1]
p = comm.size - 1

if mode == "snapshot":
    problem = get_problem("portfolio:synthetic:N=7,n=101,seed=3,lam=0.5")
    x_tilde = np.random.default_rng(5).standard_normal(problem.dim)
    solver = AsyVRSCDistributed(x_tilde.copy(), problem, comm=comm)
    if solver.is_server:
        solver.serve()  # until the workers leave
    else:
        snap = solver.snapshot_at(x_tilde)
        whole = snapshot(problem, x_tilde)
        closed = -problem.rbar + problem.hessian() @ x_tilde
        for name in ("inner", "outer_grad", "grad"):
            assert np.allclose(getattr(snap, name), getattr(whole, name), rtol=1e-13, atol=1e-13), name
        assert np.allclose(snap.grad, closed, rtol=1e-12, atol=1e-12), (snap.grad, closed)
        sampler = Sampler(problem.m, problem.n, 8, seed=0, worker=solver.worker)
        for _ in range(5):
            assert np.array_equal(estimate(problem, snap, x_tilde, sampler.draw()), snap.grad)
    solver.close()
    done(comm)

elif mode == "oracle":
    assert p == 1, "the bit-for-bit oracle has one worker"
    problem = get_problem("portfolio:pricing")
    schedule = Schedule.for_problem(problem, epochs=3, K=300)

    def distributed(mutate):
        x = problem.x0.copy()
        solver = AsyVRSCDistributed(x, problem, comm=comm, epochs=3, inner_steps=300, seed=7)
        solver.mutate_ignore_updates = mutate
        history = solver.run()
        solver.close()
        assert len(solver.delays) == 3 * 300 and set(solver.delays) == {0}, "one worker: every delay is 0"
        return x, history

    def equal_to_sequential(x, history):
        reference = compositional_svrg(problem, schedule, seed=7)
        return (np.array_equal(x, reference.x)
                and [r.gap for r in history] == [r.gap for r in reference.history]
                and [(r.epoch, r.step) for r in history] == [(r.epoch, r.step) for r in reference.history])

    x, history = distributed(mutate=False)
    assert equal_to_sequential(x, history), "one worker, no delay: not equal to sequential SVRG bit for bit"
    assert history[-1].gap < 1e-2 * history[0].gap
    x, history = distributed(mutate=True)
    assert not equal_to_sequential(x, history), "the oracle passed a master that ignores the updates"
    assert np.array_equal(x, problem.x0)
    done(comm)

elif mode == "converge":
    spec, epochs = sys.argv[2], int(sys.argv[3])
    problem = get_problem(spec)
    x = problem.x0.copy()
    solver = AsyVRSCDistributed(x, problem, comm=comm, epochs=epochs, seed=11, stop_gap=1e-6)
    history = solver.run()
    K = solver.schedule.K
    gaps = [r.gap for r in history]
    assert gaps[-1] <= 1e-6 * gaps[0], (spec, gaps)
    assert np.allclose(x, comm.bcast(x, root=0), rtol=0, atol=0), "ranks hold different final x"
    assert problem.gap(x) == gaps[-1]
    delays = np.array(solver.delays)
    assert len(delays) == (len(history) - 1) * K, (len(delays), len(history), K)
    assert delays.min() >= 0 and delays.max() <= p - 1, delays.max()
    assert solver.dropped <= (len(history) - 1) * (p - 1), solver.dropped
    if comm.rank == 0:
        print(f"{spec}: epochs {len(history) - 1} gap {gaps[-1] / gaps[0]:.1e} delays mean {delays.mean():.2f} "
              f"max {delays.max()} dropped {solver.dropped}", flush=True)
    solver.close()
    done(comm)

elif mode == "torch":
    # the torch binding: x a torch float64 tensor and the problem written as torch callables (autograd
    # vector-Jacobian products) give the numpy run's iterates (one worker: no delays, the same samples)
    import torch

    from mpisgd.masterworker.problems.torchfn import torch_portfolio

    problem = get_problem("portfolio:synthetic:N=6,n=80,seed=2,lam=0.5")
    written = torch_portfolio(problem.returns, problem.lam, optimum=problem.optimum())
    runs = {}
    for label, prob, x in (("numpy", problem, problem.x0.copy()),
                           ("torch", written, torch.zeros(problem.dim, dtype=torch.float64))):
        solver = AsyVRSCDistributed(x, prob, comm=comm, epochs=4, inner_steps=200, batch=4, seed=3,
                                    eta=problem.schedule["eta"])  # the torch problem has no tuned default
        history = solver.run()
        solver.close()
        runs[label] = (np.asarray(x, dtype=np.float64), [r.gap for r in history])
    (xn, gn), (xt, gt) = runs["numpy"], runs["torch"]
    assert np.allclose(xt, xn, rtol=1e-10, atol=1e-12), np.abs(xt - xn).max()
    assert np.allclose(gt, gn, rtol=1e-6, atol=1e-14), (gt, gn)
    assert gn[-1] < 1e-3 * gn[0], gn
    done(comm)
