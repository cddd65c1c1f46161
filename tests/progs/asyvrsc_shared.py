"""AsyVRSC-Shared and its shared-memory window under mpiexec.

Parts (argv[1]):
  window       every rank sees the others' raw writes; R atomic adds per rank sum exactly to p R and
               every Fetch_and_op ticket is drawn once; raw adds are counted (some may be lost: printed only)
  sequential   (1 rank) equals the sequential compositional SVRG bit for bit, raw and atomic
  converge     (p ranks) gap factor >= 1e6 on portfolio:pricing and portfolio:crspday, raw and atomic;
               the history is the same on every rank, its delay histograms count every inner step
  nodes        MPICH told to see each rank as its own node (MPIR_CVAR_NUM_CLIQUES): refused on every rank
"""

import sys

import numpy as np
from _common import done, world

from mpisgd.comm import Communicator
from mpisgd.comm.window import SharedWindow
from mpisgd.errors import UsageError
from mpisgd.masterworker.problems import get_problem
from mpisgd.masterworker.sequential import compositional_svrg
from mpisgd.masterworker.shared import AsyVRSCShared

REPEATS = 3000
FACTOR = 1e-6  # relative gap to reach
MAX_EPOCHS = 40


def window_part(comm):
    c = Communicator(comm)
    p, rank = c.size, c.rank
    w = SharedWindow(c, p + 1)
    w.array[rank] = rank + 1.0  # raw store to this rank's own element
    w.fence()
    assert np.array_equal(w.read(), np.r_[np.arange(1.0, p + 1), 0.0]), w.read()
    assert np.array_equal(w.read(atomic=True), w.read())
    w.free()
    # atomic: no increment lost, every ticket drawn exactly once
    counts, tickets = SharedWindow(c, 64), SharedWindow(c, 1, np.int64)
    ones, drawn = np.ones(64), []
    for _ in range(REPEATS):
        counts.add(ones, atomic=True)
        drawn.append(int(tickets.fetch_add(1)))
    counts.fence()
    assert np.all(counts.read() == p * REPEATS), counts.read()
    assert tickets.load() == p * REPEATS
    everyone = sorted(sum(comm.allgather(drawn), []))
    assert everyone == list(range(p * REPEATS)), "a Fetch_and_op ticket was drawn twice or never"
    # raw: Hogwild adds (racy; the loss is reported, never asserted)
    raw = SharedWindow(c, 64)
    for _ in range(REPEATS):
        raw.add(ones)
    raw.fence()
    if rank == 0:
        print(f"raw adds lost: {int(p * REPEATS * 64 - raw.read().sum())} of {p * REPEATS * 64}", flush=True)
    for window in (counts, tickets, raw):
        window.free()
    c.free()


def sequential_part(comm):
    assert comm.size == 1
    for spec in ("portfolio:pricing", "mdp"):
        problem = get_problem(spec)
        twin = compositional_svrg(problem, epochs=3, seed=7)
        for atomic in (False, True):
            x = problem.x0.copy()
            solver = AsyVRSCShared(x, problem, comm=comm, epochs=3, seed=7, atomic=atomic)
            history = solver.run()
            solver.close()
            assert np.array_equal(x, twin.x), (spec, atomic, np.abs(x - twin.x).max())
            assert [r.gap for r in history] == [r.gap for r in twin.history], (spec, atomic)
            K = problem.schedule.get("K") or 2 * problem.m
            assert solver.delay_counts == [[K]] * 3 and solver.delays == [0] * 3 * K, solver.delay_counts


def converge_part(comm):
    for spec in ("portfolio:pricing", "portfolio:crspday"):
        problem = get_problem(spec)
        for atomic in (False, True):
            x = problem.x0.copy()
            solver = AsyVRSCShared(x, problem, comm=comm, epochs=MAX_EPOCHS, atomic=atomic, stop_gap=FACTOR)
            history = solver.run()
            K = solver.schedule.K
            solver.close()
            last, relative = history[-1], [r.gap / history[0].gap for r in history]
            assert relative[-1] <= FACTOR, (spec, atomic, relative)
            assert abs(problem.gap(x) - last.gap) <= 1e-12 * abs(history[0].gap)  # x is the final iterate
            assert comm.allgather(history) == [history] * comm.size, "histories differ between ranks"
            assert all(sum(c) == K for c in solver.delay_counts) and len(solver.delay_counts) == last.epoch
            assert all(r.step == r.epoch * K for r in history) and len(solver.delays) == last.step
            if comm.rank == 0:
                print(f"{spec} atomic={atomic}: {last.epoch:.0f} epochs to {relative[-1]:.1e}, "
                      f"mean delay {np.mean(solver.delays):.2f}", flush=True)


def nodes_part(comm):
    from mpi4py import MPI

    if "MPICH" not in MPI.Get_library_version():
        print("SKIP: not MPICH", flush=True)
        return
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    assert node.size == 1, f"MPIR_CVAR_NUM_CLIQUES had no effect: node of {node.size} ranks"
    node.Free()
    problem = get_problem("portfolio:synthetic:N=3,n=10")
    for build in (lambda: SharedWindow(Communicator(comm), 3), lambda: AsyVRSCShared(problem.x0, problem, comm=comm)):
        try:
            build()
        except UsageError as error:
            print(f"REFUSED on rank {comm.rank}: {error}", flush=True)
        else:
            raise AssertionError("a run across nodes was not refused")


if __name__ == "__main__":
    comm = world()
    {"window": window_part, "sequential": sequential_part, "converge": converge_part,
     "nodes": nodes_part}[sys.argv[1]](comm)
    done(comm)
