"""DistributedOptimizer: a ``torch.optim.Optimizer`` that runs an mpisgd algorithm around another one.

The local optimizer does the update (SGD, momentum, Adam, ...); the algorithm
does the distributed part around it. Nothing of torch's optimizer is
re-implemented: like torch's ``PostLocalSGDOptimizer`` and Opacus's
``DPOptimizer``, the wrapper shares ``param_groups``, ``state`` and
``defaults`` with the optimizer it wraps (the same objects), so LR
schedulers, ``Optimizer`` step hooks and checkpoints see one optimizer.
With ``torch.amp.GradScaler`` the wrapper unscales after the algorithm's
communication, and an inf or NaN skips only the local step (the algorithm's
communication goes on, so no rank is left waiting in a collective). For
``sync`` the gradients are the global mean as soon as ``backward()``
returns (as with DDP), so clipping between backward and step sees them.

Example (``mpiexec -n 2 python -m mpi4py example.py``)::

    import torch
    from mpi4py import MPI
    import mpisgd

    torch.manual_seed(MPI.COMM_WORLD.rank)       # different starts: rank 0's are broadcast
    model = torch.nn.Linear(4, 2)
    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=MPI.COMM_WORLD)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for step in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        scheduler.step()
    opt.finish()
    print(MPI.COMM_WORLD.rank, scheduler.get_last_lr(), opt.statistics()["steps"])
    opt.close()
"""

import torch

from ..algorithm import Algorithm, get_algorithm
from ..errors import UsageError
from ..flat import FlatParams


def _shared(name: str, doc: str) -> property:
    """An attribute read from (and written to) the wrapped optimizer: one object, two names."""
    return property(lambda self: getattr(self.optimizer, name),
                    lambda self, value: setattr(self.optimizer, name, value), doc=doc)


class DistributedOptimizer(torch.optim.Optimizer):
    """``optimizer`` plus the algorithm ``algorithm`` (a registered name or an Algorithm class).

    The optimizer's parameters are moved into one flat buffer (they stay the
    same ``Parameter`` objects, so the model and the optimizer keep working);
    gradients are views into a second flat buffer, and backward hooks tell
    the algorithm when each gradient is complete. ``init`` says what
    construction does with the ranks' initial parameters: ``"broadcast"``
    rank 0's (default, as DDP), ``"check"`` they are equal, ``"keep"`` them.
    ``Optimizer.__init__`` is not called: the parameter groups are the wrapped
    optimizer's, never copied.
    """

    param_groups = _shared("param_groups", "The wrapped optimizer's parameter groups (the same list).")
    state = _shared("state", "The wrapped optimizer's per-parameter state (the same dict).")
    defaults = _shared("defaults", "The wrapped optimizer's defaults (the same dict).")
    # step/state_dict hooks registered here are the wrapped optimizer's: they run around its step
    _optimizer_step_pre_hooks = _shared("_optimizer_step_pre_hooks", None)
    _optimizer_step_post_hooks = _shared("_optimizer_step_post_hooks", None)
    _optimizer_state_dict_pre_hooks = _shared("_optimizer_state_dict_pre_hooks", None)
    _optimizer_state_dict_post_hooks = _shared("_optimizer_state_dict_post_hooks", None)
    _optimizer_load_state_dict_pre_hooks = _shared("_optimizer_load_state_dict_pre_hooks", None)
    _optimizer_load_state_dict_post_hooks = _shared("_optimizer_load_state_dict_post_hooks", None)

    def __init__(self, optimizer, algorithm, *, comm=None, names=None, init="broadcast", **options):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        cls = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
        self.optimizer = optimizer
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.flat = FlatParams.from_parameters(params, names=names)
        self.algorithm = cls(self.flat, comm=comm, init=init, **options)
        if self.algorithm.averages_gradients and hasattr(optimizer, "average_hessian"):
            # AdaHessian: its Hessian diagonal estimate is averaged wherever the gradient is (sync)
            optimizer.average_hessian = lambda flat: self.algorithm.comm.allreduce(flat, average=True)
        self._end_queued = False  # the end-of-backward callback is queued for the pass in progress
        self._hooks = [
            p.register_post_accumulate_grad_hook(self._make_hook(index))
            for index, p in enumerate(self.flat.tensors)
            if p.requires_grad
        ]

    def _make_hook(self, index: int):
        adopt, ready = self.flat.adopt_grad, self.algorithm.grad_ready  # bound once: the hook runs every backward
        if type(self.algorithm).backward_done is Algorithm.backward_done:
            def hook(_param):
                adopt(index)
                ready(index)

            return hook

        def hook_and_end(_param):  # the algorithm also wants to know when backward ends
            adopt(index)
            ready(index)
            if not self._end_queued:
                self._end_queued = True
                torch.autograd.Variable._execution_engine.queue_callback(self._backward_done)

        return hook_and_end

    def _backward_done(self) -> None:
        self._end_queued = False
        self.algorithm.backward_done()

    @property
    def comm(self):
        return self.algorithm.comm

    def add_param_group(self, param_group: dict) -> None:
        """Not supported: raises :class:`~mpisgd.errors.UsageError` (the flat buffer is fixed at construction)."""
        raise UsageError("add_param_group is not supported: the flat parameter buffer is fixed at construction; "
                         "add every parameter group to the local optimizer, then build the distributed optimizer")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient buffer; gradients stay views into it (``set_to_none`` is ignored)."""
        self.flat.zero_grad()

    # torch.amp.GradScaler: instead of unscaling itself and skipping step() on an inf or NaN
    # gradient (which would leave this rank out of the next collective), it sets these two
    # attributes for the duration of step() and always calls it (its contract for optimizers
    # with _step_supports_amp_scaling).
    _step_supports_amp_scaling = True
    # found_inf: a tensor, > 0 when this rank's gradients hold an inf or NaN; grad_scale: the scale
    # the gradients still carry (None: unscaled already). No class default for grad_scale: GradScaler
    # multiplies by any value it finds there.
    found_inf = None

    def step(self, closure=None):
        """``before_step()`` of the algorithm, the local optimizer's step, ``after_step()``.

        Under a ``GradScaler``, the gradients are unscaled here, after the algorithm's
        communication, and a rank whose gradients hold an inf or NaN skips only its local
        step: the algorithm's communication goes on, so no rank is left waiting."""
        self.algorithm.before_step()
        loss = None
        if self.found_inf is None:
            loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        elif not float(self.found_inf) > 0:
            scale = getattr(self, "grad_scale", None)
            if scale is not None:
                self.flat.grads.mul_(scale.double().reciprocal().to(self.flat.grads.dtype))
            loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        self.algorithm.after_step()
        return loss

    def report_loss(self, loss: float) -> None:
        """Tell the algorithm this step's training loss (leader choice in LSGD)."""
        self.algorithm.report_loss(float(loss))

    def progress(self) -> None:
        """Advance in-flight communication; call it during long local work."""
        self.algorithm.progress()

    def finish(self) -> None:
        """Complete in-flight communication (call once, after the last step)."""
        self.algorithm.finish()

    def statistics(self) -> dict:
        return self.algorithm.statistics()

    def state_dict(self) -> dict:
        """The wrapped optimizer's ``state_dict()`` (``state``, ``param_groups``) plus ``"algorithm"``:
        the algorithm's options, counters and buffers."""
        state = self.optimizer.state_dict()
        state["algorithm"] = self.algorithm.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        algorithm = state.pop("algorithm", None)
        self.optimizer.load_state_dict(state.pop("optimizer", state))  # "optimizer": the 0.1 layout
        if algorithm is not None:
            self.algorithm.load_state_dict(algorithm)

    def close(self) -> None:
        """Remove the backward hooks and free the algorithm's private communicator."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        self.algorithm.close()

    def __getstate__(self):
        raise TypeError(f"{type(self).__name__} holds MPI state and cannot be pickled; save its state_dict()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.algorithm.name}, {self.optimizer!r})"
