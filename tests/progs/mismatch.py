"""The last rank builds a different model: every rank must stop with a clear error."""

import torch
from _common import world

import mpisgd

comm = world()
hidden = 10 + (comm.rank == comm.size - 1)
model = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Linear(hidden, 2))
mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)
print("NOT REACHED", flush=True)
