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
