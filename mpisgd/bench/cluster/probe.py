"""An Allreduce of a known size, timed on every rank (run inside an emulated cluster by ``check``).

``python -m mpi4py -m mpisgd.bench.cluster.probe BYTES REPEATS``: one untimed
Allreduce of float32 values, then REPEATS timed ones separated by barriers;
rank 0 prints one JSON line with every repetition's time (the slowest rank's).
"""

import json
import sys
import time

import numpy as np
from mpi4py import MPI


def main(argv) -> int:
    nbytes, repeats = int(argv[0]), int(argv[1])
    comm = MPI.COMM_WORLD
    values = np.ones(nbytes // 4, dtype=np.float32)
    comm.Allreduce(MPI.IN_PLACE, values)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, values)
        times.append(comm.allreduce(time.perf_counter() - start, op=MPI.MAX))
    expected = float(comm.Get_size()) ** (repeats + 1)  # every element is size^(allreduces)
    if comm.Get_rank() == 0:
        print(json.dumps({"ranks": comm.Get_size(), "bytes": values.nbytes, "seconds": times,
                          "correct": bool(np.all(values == expected))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
