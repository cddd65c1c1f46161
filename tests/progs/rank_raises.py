"""Rank 1 raises in the middle of training; the abort hook must end the whole job."""

import time

import torch
from _common import world

import mpisgd
from mpisgd.comm import install_abort_hook

install_abort_hook()  # what the mpisgd command line does (no `python -m mpi4py` here)
comm = world()
torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)
for step in range(1000):
    opt.zero_grad()
    model(torch.randn(8, 4)).sum().backward()
    if step == 5 and comm.rank == 1:
        print(f"FAILING-AT {time.time()}", flush=True)
        raise ValueError("injected failure on rank 1")
    opt.step()
print("NOT REACHED", flush=True)
