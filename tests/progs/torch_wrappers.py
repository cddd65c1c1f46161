"""Every collective algorithm through its torch wrapper: trains, finishes on one model,
and its state_dict carries the algorithm's counters and buffers."""

import torch
from _common import done, world

import mpisgd

comm = world()
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(comm.rank)
x = torch.randn(64, 5, generator=generator)
y = (x.sum(1) > 0).long()
buffers = {"LocalSGD": "averaged_at", "CoCoDSGD": "snapshot", "FDA": "anchor", "EASGD": "center", "LSGD": "losses"}
for name, key in buffers.items():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = getattr(mpisgd, name)(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), comm=comm)
    first = None
    for step in range(12):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.report_loss(loss.item())
        first = first or loss.item()
    opt.finish()
    assert loss.item() < first, (name, first, loss.item())
    flat = opt.flat.params.detach().clone()
    models = comm.allgather(flat)
    assert all(torch.equal(models[0], m) for m in models), f"{name}: ranks differ after finish()"
    state = opt.state_dict()
    assert state["algorithm"]["steps"] == 12 and key in state["algorithm"], (name, list(state["algorithm"]))
    assert "state" in state and "param_groups" in state  # torch's layout, plus "algorithm"
    opt.close()
done(comm)
