"""After backward() the gradients are the global mean (sync), GradScaler works on every wrapper
class, an inf on one rank skips only that rank's local step, and torch.compile'd models train.

Oracles, from the rules (never from the wrapper's state):
- sync: right after ``backward()`` each ``.grad`` equals the mean over ranks of the local
  gradients (computed on a plain copy of the model, gathered with mpi4py), so clipping between
  backward and step sees the averaged values;
- with a power-of-two GradScaler scale (exact in floating point) training gives the same
  parameters as training without it, on every synchronous wrapper class (the asynchronous ones
  train under it and end on one model);
- an inf injected on rank 1 at one step under sync skips that step on every rank (the averaged
  gradient holds the inf everywhere) and halves every rank's scale; under local (period 2) rank 1
  alone keeps its parameters for that step, rank 0 moves, and nobody hangs;
- a ``torch.compile``d model (aot_eager backend) under sync gives the losses of the plain model.
"""

import copy

import numpy as np
import torch
from _common import done, world

import mpisgd
from mpisgd.torch import CLASSES

# the master-worker classes need a serving rank: tests/test_easgd_async.py (torch_masterworker.py)
CLASSES = {name: cls for name, cls in CLASSES.items() if "servers" not in cls.algorithm_class.options}

comm = world()
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(comm.rank)
x = torch.randn(32, 5, generator=generator)
y = (x.sum(1) > 0).long()
ZERO = {"lsgd": {"pull": 0.0, "global_pull": 0.0}}  # options that keep each class comparable


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def loss_of(model):
    return torch.nn.functional.cross_entropy(model(x), y)


# 1. sync: .grad is the global mean right after backward()
model = make_model()
plain = copy.deepcopy(model)
opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)
local = torch.autograd.grad(loss_of(plain), list(plain.parameters()))
flat_local = torch.cat([g.reshape(-1) for g in local]).numpy()
expected = np.mean(comm.allgather(flat_local), axis=0)
opt.zero_grad()
loss_of(model).backward()
after_backward = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
assert np.allclose(after_backward, expected, rtol=1e-6, atol=1e-7), "the gradients after backward() are not the mean"
torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # between backward and step, as DDP users do
opt.step()
opt.finish()
opt.close()


# 2. a power-of-two scale changes nothing, on every class
def train(class_name, scaler=None, steps=5, inject=None):
    model = make_model()
    cls = CLASSES[class_name]
    options = ZERO.get(cls.algorithm_class.name, {})
    opt = cls(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm, **options)
    trail = []
    for step in range(steps):
        opt.zero_grad()
        loss = loss_of(model)
        if inject is not None and inject == (comm.rank, step):
            loss = loss * float("inf")
        before = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        trail.append((before, after.clone(), None if scaler is None else scaler.get_scale()))
    opt.finish()
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
    opt.close()
    return params, trail


for class_name in sorted(CLASSES):
    scaled, _ = train(class_name, torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000))
    if CLASSES[class_name].algorithm_class.asynchronous:  # timing decides who averages with whom
        models = comm.allgather(scaled)
        assert all(torch.equal(models[0], m) for m in models), f"{class_name}: ranks differ after finish()"
        continue
    reference, _ = train(class_name)
    assert torch.allclose(reference, scaled, rtol=1e-6, atol=1e-7), f"{class_name}: GradScaler changed the result"

# 3. an inf on rank 1 at step 2
params, trail = train("SyncSGD", torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000), inject=(1, 2))
before, after, scale = trail[2]
assert torch.equal(before, after), "sync: the step with an inf on rank 1 was not skipped on every rank"
assert scale == 2.0**9, f"sync: the scale after the inf is {scale}"
assert not torch.equal(*trail[3][:2]), "sync: training did not go on after the skipped step"
models = comm.allgather(params)
assert all(torch.equal(models[0], m) for m in models), "sync: ranks differ"

params, trail = train("LocalSGD", torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000),
                      inject=(1, 2))
before, after, _ = trail[2]
assert torch.equal(before, after) == (comm.rank == 1), "local: only rank 1 skips its local step"
models = comm.allgather(params)
assert all(torch.equal(models[0], m) for m in models), "local: ranks differ after finish()"

# 4. torch.compile
def losses(compiled: bool):
    model = make_model()
    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=comm)
    run = torch.compile(model, backend="aot_eager") if compiled else model
    values = []
    for _ in range(4):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(run(x), y)
        loss.backward()
        opt.step()
        values.append(loss.item())
    opt.close()
    return values


assert np.allclose(losses(True), losses(False), rtol=1e-6), "torch.compile changed the training"
done(comm)
