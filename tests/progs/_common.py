"""Shared by the MPI test programs: world-size check and a tolerance helper."""

import os

from mpi4py import MPI


def world():
    """COMM_WORLD, after checking it has the size the test launched."""
    comm = MPI.COMM_WORLD
    expected = int(os.environ["MPISGD_TEST_RANKS"])
    assert comm.size == expected, f"asked for {expected} ranks, MPI world has {comm.size}"
    return comm


def done(comm, label="OK"):
    """Print OK on rank 0 once every rank got here."""
    comm.Barrier()
    if comm.rank == 0:
        print(label, flush=True)


class Quadratic:
    """f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i): rank i's strongly convex objective (float64).

    ``identical=True`` gives every rank the same A and b (rank 0's);
    ``shared_curvature=True`` the same A but its own b.
    The minimizer of the mean objective is ``solve(mean A, mean A b)``.
    """

    def __init__(self, comm, dim=6, seed=0, identical=False, shared_curvature=False):
        import numpy as np

        def draw(rank):
            rng = np.random.default_rng(seed * 1000 + rank)
            q = np.random.default_rng(seed * 1000).standard_normal((dim, dim)) if shared_curvature \
                else rng.standard_normal((dim, dim))
            return q @ q.T / dim + np.eye(dim), rng.standard_normal(dim)

        pairs = [draw(0 if identical else r) for r in range(comm.size)]
        self.a, self.b = pairs[comm.rank]
        mean_a = sum(a for a, _ in pairs) / comm.size
        mean_ab = sum(a @ b for a, b in pairs) / comm.size
        self.minimizer = np.linalg.solve(mean_a, mean_ab)
        self.lipschitz = max(np.linalg.eigvalsh(a).max() for a, _ in pairs)

    def grad(self, x):
        return self.a @ (x - self.b)

    def value(self, x):
        d = x - self.b
        return 0.5 * d @ self.a @ d


def gather(comm, x):
    """Every rank's copy of x, stacked (for checks only)."""
    import numpy as np

    return np.array(comm.allgather(np.array(x, copy=True)))


def no_torch():
    """The flat-vector algorithms must work without importing torch."""
    import sys

    assert "torch" not in sys.modules, "torch was imported by a numpy-only run"
