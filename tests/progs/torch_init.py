"""Initial parameters at construction (init=broadcast/check/keep), broadcast_module, add_param_group.

Ranks seed their models differently (torch.manual_seed(rank)), as a user who
forgot the seed would.
"""

import numpy as np
import torch
from _common import done, world

import mpisgd
from mpisgd import AgreementError, UsageError
from mpisgd.collective import PeriodicAveraging
from mpisgd.torch import broadcast_module

comm = world()
p, rank = comm.size, comm.rank
torch.set_num_threads(1)
x = torch.randn(32, 5, generator=torch.Generator().manual_seed(100 + rank))
y = (x.sum(1) > 0).long()


def model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def vector(net):
    return torch.cat([q.detach().reshape(-1) for q in net.parameters()]).clone()


def train(opt, net, steps=5):
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    opt.finish()


def all_equal(tensor):
    copies = comm.allgather(tensor)
    return all(torch.equal(copies[0], c) for c in copies)


def raised_everywhere(build, error, text):
    """build() raises ``error`` mentioning ``text`` on this rank; every rank reports the same."""
    try:
        build()
        outcome = "no error"
    except error as caught:
        outcome = str(caught)
        print(f"rank {rank}: {error.__name__}: {caught}", flush=True)
    outcomes = comm.allgather(outcome)
    assert all(text in o for o in outcomes) and len(set(outcomes)) == 1, outcomes


# 1. default init="broadcast": every rank starts from rank 0's model, and sync keeps one model
net = model(seed=rank)
start0 = comm.bcast(vector(net), root=0)
opt = mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), comm=comm)
assert torch.equal(vector(net), start0), "construction must copy rank 0's parameters"
assert opt.statistics()["bytes_sent"] == 0, "set-up traffic is not training traffic"
train(opt, net)
assert all_equal(vector(net)), "ranks seeded differently must end with one model under sync"
opt.close()

# 2. init="keep": the different starts stay (and sync does not make them equal)
net = model(seed=rank)
mine = vector(net)
opt = mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm, init="keep")
assert torch.equal(vector(net), mine)
train(opt, net)
assert p == 1 or not all_equal(vector(net)), "init='keep' must keep the different models"
opt.close()

# 3. init="check": an AgreementError on every rank when the values differ; silence when equal
net = model(seed=rank)
raised_everywhere(lambda: mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm, init="check"),
                  AgreementError, "ranks start from different parameter values" if p > 1 else "no error")
net = model(seed=0)
opt = mpisgd.LocalSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm, init="check")
opt.close()

# 4. bad or disagreeing init: an error on every rank
net = model(seed=0)
raised_everywhere(lambda: mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm,
                                         init="first" if rank == p - 1 else "broadcast"),
                  UsageError, "init must be one of broadcast, check, keep")
if p > 1:
    raised_everywhere(lambda: mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm,
                                             init="keep" if rank == p - 1 else "broadcast"),
                      AgreementError, "init")

# 5. flat numpy users get the same default: rank 0's vector everywhere
v = np.full(7, float(rank))
local = PeriodicAveraging(mpisgd.FlatParams(v), comm=comm, period=2)
assert np.array_equal(v, np.zeros(7)) and local.statistics()["bytes_sent"] == 0
local.close()

# 6. add_param_group: a UsageError (the flat buffer is fixed at construction)
net = model(seed=0)
opt = mpisgd.SyncSGD(torch.optim.SGD(net.parameters(), lr=0.1), comm=comm)
extra = torch.nn.Parameter(torch.zeros(3))
raised_everywhere(lambda: opt.add_param_group({"params": [extra]}), UsageError, "then build the distributed optimizer")
opt.close()

# 7. broadcast_module: parameters and BatchNorm buffers equal rank 0's
torch.manual_seed(rank)
bn = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).double()
bn[2].weight.data = bn[2].weight.data.t().contiguous().t()  # a non-contiguous parameter
bn(x.double() * (1 + rank))  # training-mode forward: rank-dependent running statistics
assert p == 1 or not all_equal(bn[1].running_var)
root_state = {k: v.clone() for k, v in comm.bcast(bn.state_dict(), root=0).items()}
broadcast_module(bn, comm)
for name, tensor in bn.state_dict().items():
    assert torch.equal(tensor, root_state[name]), name
assert int(bn[1].num_batches_tracked) == 1
done(comm)
