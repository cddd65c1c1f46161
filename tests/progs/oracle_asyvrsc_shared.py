"""Independent multi-rank oracle of AsyVRSC-Shared from the recorded reads.  Usage:
``oracle_asyvrsc_shared.py [--mutate]`` on p ranks of one node (the test runs 2).

A lock-free read of shared memory cannot be replayed from an arrival order, so the program records what
each update was computed from, by wrapping the ``read`` and ``add`` methods of its own instance's window
(nothing in mpisgd knows about it): every read, a copy of the x it returned (a read without ``out`` is
the epoch's snapshot read at the fence, the others the inner steps' reads), and every ``add``, the
step -eta v_k added. Reads sleep a rank-dependent time first, so that the ranks' reads and adds really
interleave (atomic mode: ``Get_accumulate``/``Accumulate``, no update lost).

The numpy reference (the formula functions of ``_asyvrsc_reference``, ALGORITHMS.md §9; imports nothing
of mpisgd) then, epoch by epoch:

- checks the snapshot every rank read at the fence is the same x and equals the reference's x, which
  starts at x0 and after each epoch is the epoch's snapshot plus every rank's steps RECOMPUTED by the
  reference (sum order-independent up to rounding: ``TOLERANCE_X``);
- recomputes each update v_k from the snapshot (G~, grad F(G~), grad f(x~) computed by the reference)
  and the recorded read, with the indices REPRODUCED from the rank's seed stream
  (``default_rng([seed, r])``: A_k, then j_k, then i_k), and checks the recorded step equals -eta v_k
  (``TOLERANCE_STEP``);
- checks that some reads saw another rank's updates (the ranks really interleaved);
- checks the final shared x equals the last snapshot plus every step of the last epoch (``TOLERANCE_X``),
  and that every epoch has exactly K updates.

``--mutate``: the updates never reach the shared x (``_mutations``); the oracle must fail with
``differs from the reference``.
"""

import sys
import time

import _asyvrsc_reference as reference
import _mutations
import numpy as np
from _common import done, world

from mpisgd.masterworker import AsyVRSCShared
from mpisgd.masterworker.problems import get_problem

TOLERANCE_STEP = 1e-12  # max abs difference of a recorded step -eta v_k from the reference's (float64)
TOLERANCE_X = 1e-10  # max abs difference of a shared x (sum of ~K steps in another order) from the reference's
SEED, EPOCHS, K, A = 5, 3, 60, 4

comm = world()
if "--mutate" in sys.argv:
    _mutations.apply("asyvrsc-shared")
problem = get_problem("portfolio:synthetic:N=6,n=40,seed=0")


def run(atomic):
    """The MPI run; returns every rank's log [(kind, epoch, array)], eta and the final shared x."""
    x = problem.x0.copy()
    solver = AsyVRSCShared(x, problem, comm=comm, epochs=EPOCHS, inner_steps=K, batch=A, seed=SEED,
                           atomic=atomic)
    window, log, epoch = solver.window, [], [0]
    read, add = window.read, window.add

    def recorded_read(out=None, **kwargs):
        if out is None:  # the snapshot read at the fence: a new epoch
            epoch[0] += 1
            result = read(**kwargs)
            log.append(("snapshot", epoch[0], result.copy()))
            return result
        time.sleep(0.0002 * (1 + 2 * comm.rank + len(log) % 3))  # rank-dependent pace: reads interleave
        result = read(out, **kwargs)
        log.append(("read", epoch[0], result.copy()))
        return result

    def recorded_add(delta, **kwargs):
        log.append(("add", epoch[0], np.array(delta, dtype=np.float64, copy=True)))
        return add(delta, **kwargs)

    window.read, window.add = recorded_read, recorded_add
    solver.run()
    eta = solver.schedule.eta
    solver.close()
    return comm.allgather(log), eta, x.copy()


def check(label, atomic):
    logs, eta, final = run(atomic)
    R = np.asarray(problem.returns, dtype=np.float64)
    m = n = len(R)
    streams = [np.random.default_rng([SEED, r]) for r in range(comm.size)]
    x_ref, worst_step, worst_x, updates = np.array(problem.x0, dtype=np.float64), 0.0, 0.0, 0
    mixed = 0  # reads that saw another rank's updates (not just the snapshot plus this rank's own steps)
    for epoch in range(1, EPOCHS + 1):
        total = np.zeros_like(x_ref)
        count = 0
        for rank, log in enumerate(logs):
            events = [(kind, x) for kind, e, x in log if e == epoch]
            assert events and events[0][0] == "snapshot", f"{label}: rank {rank} epoch {epoch} has no snapshot"
            error = float(np.abs(events[0][1] - x_ref).max())
            worst_x = max(worst_x, error)
            assert error <= TOLERANCE_X, (f"{label}: rank {rank}'s snapshot of epoch {epoch} differs from the "
                                          f"reference by {error:.3g} (tolerance {TOLERANCE_X})")
            snap = reference.snapshot(R, events[0][1])
            own = events[0][1].copy()
            inner = events[1:]
            assert [kind for kind, _ in inner] == ["read", "add"] * (len(inner) // 2) and len(inner) % 2 == 0, \
                f"{label}: rank {rank} epoch {epoch}: reads and adds do not alternate"
            for k in range(0, len(inner), 2):
                seen, step = inner[k][1], inner[k + 1][1]
                mixed += bool(np.abs(seen - own).max() > TOLERANCE_X)
                own += step
                rng = streams[rank]
                batch = rng.integers(0, m, A)
                j, i = rng.integers(0, m, 1)[0], rng.integers(0, n, 1)[0]
                expected = -eta * reference.estimate(R, snap, seen, batch, j, i)
                error = float(np.abs(step - expected).max())
                worst_step = max(worst_step, error)
                assert error <= TOLERANCE_STEP, (f"{label}: rank {rank}'s step {k // 2} of epoch {epoch} differs "
                                                 f"from the reference by {error:.3g} (tolerance {TOLERANCE_STEP})")
                total += expected
                count += 1
        assert count == K, f"{label}: epoch {epoch} has {count} updates, the reference {K}"
        updates += count
        x_ref = x_ref + total
    error = float(np.abs(final - x_ref).max())
    worst_x = max(worst_x, error)
    assert error <= TOLERANCE_X, (f"{label}: the final shared x differs from the reference x0 - eta sum v by "
                                  f"{error:.3g} (tolerance {TOLERANCE_X})")
    moved = float(np.abs(x_ref - problem.x0).max())
    assert mixed > 0, f"{label}: no read saw another rank's update: the ranks did not interleave"
    if comm.rank == 0:
        print(f"{label}: {updates} updates recomputed from their reads (max step error {worst_step:.1e}), "
              f"snapshots and final x match (max error {worst_x:.1e}, x moved {moved:.2g}), {mixed} reads saw "
              f"another rank's updates", flush=True)


check("asyvrsc-shared atomic, 2 ranks", atomic=True)
done(comm)
