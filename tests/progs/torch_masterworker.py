"""The torch classes of async EASGD, EAMSGD and dynamic weighting: rank 0 serves, the others train a
linear regression; the loss falls, every rank ends holding the center, state_dict has the role's state."""

import numpy as np
import torch
from _common import done, world

import mpisgd

comm = world()
torch.manual_seed(comm.rank)
data = torch.randn(64, 4, dtype=torch.float64)
target = data @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)


def loss_of(model):
    return torch.nn.functional.mse_loss(model(data).squeeze(1), target)


def value(model):
    with torch.no_grad():
        return float(loss_of(model))


for cls, options in ((mpisgd.EASGDAsync, {}), (mpisgd.EASGDAsync, {"overlap": True}),
                     (mpisgd.EAMSGDAsync, {"local_momentum": 0.5}), (mpisgd.EASGDDynamicWeighting, {"deadline": 5.0})):
    model = torch.nn.Linear(4, 1, bias=False).double()
    opt = cls(torch.optim.SGD(model.parameters(), lr=0.05), comm=comm, period=2, timeout=30, **options)
    state = opt.state_dict()["algorithm"]
    if opt.algorithm.is_server:
        assert isinstance(state["center"], np.ndarray)
        opt.algorithm.serve()  # rank 0 holds the center until every worker has left
    else:
        assert ("velocity" in state) == (cls is mpisgd.EAMSGDAsync)
        first = value(model)
        for step in range(100):
            opt.zero_grad()
            loss_of(model).backward()
            opt.step()
    opt.finish()  # every rank now holds the center (each worker: as it was when it left)
    weights = np.array(comm.allgather(model.weight.detach().numpy().copy()))
    assert np.abs(weights - weights[0]).max() < 0.05, (cls.__name__, weights)
    if not opt.algorithm.is_server:
        assert value(model) < 0.1 * first, (cls.__name__, first, value(model))
    if cls is mpisgd.EASGDDynamicWeighting:
        assert np.ptp(weights, axis=0).max() == 0.0  # synchronous: the final center is the same everywhere
    opt.close()
done(comm)
