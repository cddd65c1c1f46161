"""Torch binding: compose a torch optimizer with an mpisgd algorithm.

The local optimizer does the update (SGD, momentum, Adam, ...); the
algorithm does the distributed part around it. Nothing of torch's optimizer
is re-implemented here.

Example::

    from mpi4py import MPI
    import torch, mpisgd
    opt = mpisgd.SyncSGD(torch.optim.SGD(model.parameters(), lr=0.1), comm=MPI.COMM_WORLD)
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.finish()
"""

from .algorithm import get_algorithm
from .flat import FlatParams


class DistributedOptimizer:
    """``optimizer`` plus the algorithm ``algorithm`` (a registered name or class).

    The optimizer's parameters are moved into one flat buffer (they stay the
    same ``Parameter`` objects, so the model and the optimizer keep working);
    gradients are views into a second flat buffer, and backward hooks tell
    the algorithm when each gradient is complete.
    """

    algorithm_name = None  # set by the per-algorithm subclasses (SyncSGD, ...)

    def __init__(self, optimizer, algorithm=None, *, comm=None, names=None, **options):
        algorithm = algorithm or self.algorithm_name
        cls = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
        self.optimizer = optimizer
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.flat = FlatParams.from_parameters(params, names=names)
        self.algorithm = cls(self.flat, comm=comm, **options)
        self._hooks = [
            p.register_post_accumulate_grad_hook(self._make_hook(index))
            for index, p in enumerate(self.flat.tensors)
            if p.requires_grad
        ]

    def _make_hook(self, index):
        def hook(_param):
            self.flat.adopt_grad(index)
            self.algorithm.grad_ready(index)

        return hook

    @property
    def comm(self):
        return self.algorithm.comm

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero the flat gradient buffer (gradients stay views into it)."""
        self.flat.zero_grad()

    def step(self, closure=None):
        self.algorithm.before_step()
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
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
        return {"optimizer": self.optimizer.state_dict(), "algorithm": self.algorithm.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.algorithm.load_state_dict(state["algorithm"])

    def close(self) -> None:
        """Remove the backward hooks and free the algorithm's private communicator."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        self.algorithm.close()
