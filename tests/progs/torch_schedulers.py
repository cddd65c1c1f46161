"""LR schedulers (StepLR, OneCycleLR, LambdaLR) on every per-algorithm torch class.

The wrapper is a torch Optimizer sharing param_groups/state/defaults with the
optimizer it wraps; each scheduler drives the same learning rates (and
OneCycleLR the same momenta) as on a plain torch SGD, seen through the
wrapper and the inner optimizer alike, and the inner step uses them.
"""

import warnings

import torch
from _common import done, world

import mpisgd
from mpisgd.torch import CLASSES

# the master-worker classes need a serving rank: tests/test_easgd_async.py (torch_masterworker.py)
CLASSES = {name: cls for name, cls in CLASSES.items() if "servers" not in cls.algorithm_class.options}

comm = world()
torch.set_num_threads(1)
warnings.filterwarnings("error", module="torch.optim.lr_scheduler")  # e.g. "step() before optimizer.step()"
generator = torch.Generator().manual_seed(comm.rank)
x = torch.randn(32, 5, generator=generator)
y = (x.sum(1) > 0).long()
STEPS = 6
SCHEDULERS = {
    "StepLR": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "OneCycleLR": lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=STEPS),
    "LambdaLR": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch)),
}


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def reference(make):
    """The (lr, momentum) a scheduler gives a plain torch SGD at each step (before the step)."""
    opt = torch.optim.SGD(model().parameters(), lr=0.1, momentum=0.9)
    scheduler, seen = make(opt), []
    for _ in range(STEPS):
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
        opt.step()
        scheduler.step()
    return seen


assert len(CLASSES) == 12, sorted(CLASSES)
for class_name, cls in sorted(CLASSES.items()):
    assert getattr(mpisgd, class_name) is cls
    for scheduler_name, make in SCHEDULERS.items():
        net = model()
        inner = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        opt = cls(inner, comm=comm)
        assert isinstance(opt, torch.optim.Optimizer)
        assert opt.param_groups is inner.param_groups and opt.state is inner.state and opt.defaults is inner.defaults
        scheduler = make(opt)
        seen, used = [], []
        inner.register_step_pre_hook(lambda o, *_: used.append(o.param_groups[0]["lr"]))
        for _ in range(STEPS):
            seen.append((opt.param_groups[0]["lr"], inner.param_groups[0]["momentum"]))
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            scheduler.step()
        expected = reference(make)
        assert seen == expected, (class_name, scheduler_name, seen, expected)
        assert used == [lr for lr, _ in expected], (class_name, scheduler_name, used)
        assert len({lr for lr, _ in seen}) > 1, (class_name, scheduler_name, seen)  # the lr did change
        assert scheduler.get_last_lr() == [inner.param_groups[0]["lr"]]
        state = opt.state_dict()  # torch's layout: the scheduler's initial_lr travels in param_groups
        assert state["param_groups"][0]["initial_lr"] == inner.param_groups[0]["initial_lr"]
        assert state["algorithm"]["steps"] == STEPS
        opt.load_state_dict(state)
        assert opt.param_groups is inner.param_groups  # still shared after torch rebuilt the groups
        opt.finish()
        opt.close()
done(comm)
