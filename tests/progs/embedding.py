"""Embedding: two trainings on the two halves of a split COMM_WORLD run at the same
time, and each equals its own single-process reference (no crosstalk)."""

import torch
from _common import done, world

import mpisgd
from mpisgd.train import TrainConfig, run

comm = world()
torch.set_num_threads(1)
color = comm.rank % 2
half = comm.Split(color, key=comm.rank)  # the user's own communicator
steps = 6 + 3 * color  # the halves even run different numbers of steps
generator = torch.Generator().manual_seed(100 + color)  # and different problems
x = torch.randn(steps, 16, 5, dtype=torch.float64, generator=generator)
y = torch.randint(0, 4, (steps, 16), generator=generator)


def model():
    torch.manual_seed(color)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4)).double()


reference = model()
ref_opt = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=0.5)
net = model()
opt = mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.5), comm=half)
share = 16 // half.size
mine = slice(half.rank * share, (half.rank + 1) * share)
for step in range(steps):
    ref_opt.zero_grad()
    torch.nn.functional.cross_entropy(reference(x[step]), y[step]).backward()
    ref_opt.step()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x[step][mine]), y[step][mine]).backward()
    opt.step()
opt.finish()
error = max((a - b).abs().max().item() for a, b in zip(reference.parameters(), net.parameters()))
assert error < 1e-12, f"rank {comm.rank} (half {color}): differs by {error}"
assert opt.comm.size == half.size

# the training harness embedded the same way, one run per half, side by side
summary = run(TrainConfig(epochs=1, quiet=True, seed=color, model="logreg"), comm=half)
assert summary["world_size"] == half.size and 0 <= summary["final_accuracy"] <= 1
opt.close()
half.Free()
done(comm)
