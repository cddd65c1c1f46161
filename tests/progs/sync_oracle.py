"""Oracle (ALGORITHMS.md §1.3): p ranks, each with a slice of one batch, give exactly
the parameters of single-process SGD on the whole batch (float64)."""

import numpy as np
import torch
from _common import done, world

import mpisgd
from mpisgd.collective import BucketedAllReduce
from mpisgd.flat import FlatParams

comm = world()
torch.set_num_threads(1)
BATCH = 48  # divisible by 1, 2, 3, 4
generator = torch.Generator().manual_seed(7)
x = torch.randn(8, BATCH, 6, dtype=torch.float64, generator=generator)  # 8 steps of one batch each
y = torch.randint(0, 3, (8, BATCH), generator=generator)


def model():
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3)).double()


for momentum in (0.0, 0.9):  # plain SGD, then momentum
    reference = model()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=momentum)
    distributed = model()
    # a tiny bucket size: several buckets, so ordering and readiness are exercised
    opt = mpisgd.SyncSGD(torch.optim.SGD(distributed.parameters(), lr=0.1, momentum=momentum),
                         comm=comm, bucket_mb=20 * 8 / 2**20)
    assert len(opt.algorithm.buckets) > 1, opt.algorithm.buckets
    share = BATCH // comm.size
    mine = slice(comm.rank * share, (comm.rank + 1) * share)
    loss = torch.nn.functional.cross_entropy
    for step in range(8):
        ref_opt.zero_grad()
        loss(reference(x[step]), y[step]).backward()
        ref_opt.step()
        # with momentum, torch's own zero_grad (set_to_none) replaces .grad: mpisgd must adopt it
        (distributed.zero_grad if momentum else opt.zero_grad)()
        loss(distributed(x[step][mine]), y[step][mine]).backward()
        opt.step()
    opt.finish()
    error = max((a - b).abs().max().item() for a, b in zip(reference.parameters(), distributed.parameters()))
    assert error < 1e-12, f"rank {comm.rank}: max difference {error}"
    stats = opt.statistics()
    assert stats["steps"] == 8
    expected_bytes = 8 * 2 * (comm.size - 1) * opt.flat.numel * 8 // comm.size
    assert abs(stats["bytes_sent"] - expected_bytes) <= 8 * len(opt.algorithm.buckets), (stats, expected_bytes)


# numpy-level API: the same algorithm on a raw float64 vector, no torch
params = np.zeros(1000)
grads = np.full(1000, float(comm.rank + 1))
sync = BucketedAllReduce(FlatParams(params, grads), comm=comm)
sync.before_step()
assert np.all(grads == (comm.size + 1) / 2), grads[:3]
assert sync.state_dict()["algorithm"] == "sync"
done(comm)
