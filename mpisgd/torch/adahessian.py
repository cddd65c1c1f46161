"""AdaHessian (Yao et al., AAAI 2021, arXiv:2006.00719): Adam with a Hutchinson Hessian diagonal.

Update (ALGORITHMS.md §4.2; paper symbols in brackets), per parameter tensor:

- ``D = z * (H z)`` [Hutchinson diagonal], ``z`` Rademacher (+1/-1 with
  probability 1/2), so ``E[D] = diag(H)``; ``H z`` is one Hessian-vector
  product by double backprop (the gradient's graph, differentiated against z);
- spatial averaging: for a 4-D (conv) weight, ``|D|`` is averaged over the
  kernel's spatial dimensions (2, 3); every other shape keeps ``|D|`` element
  by element (as the official ``image_classification/optim_adahessian.py``,
  which averages 4-D weights only);
- ``m <- b1 m + (1 - b1) g`` [first moment]; ``v <- b2 v + (1 - b2) D^2``
  [second moment of the Hessian diagonal]; ``m^ = m / (1 - b1^t)``,
  ``v^ = v / (1 - b2^t)`` [bias correction];
- ``x <- x - lr (m^ / ((sqrt v^)^k + eps) + weight_decay x)`` [k: Hessian power];
  the weight decay is decoupled (not added to g nor preconditioned), as the
  official code writes it.

Defaults, from the official code ``amirgholami/adahessian``
(``image_classification/optim_adahessian.py``, class ``Adahessian``):
``lr=0.15, betas=(0.9, 0.999), eps=1e-4, weight_decay=0, hessian_power=1``.

Using it: ``loss.backward(create_graph=True)`` then ``step()`` (as the
official code). A post-accumulate-grad hook, registered when the optimizer is
built, keeps each parameter's gradient *with its graph*; at the end of that
backward pass (an autograd final callback) the Hessian-vector product is
taken from those gradients and the graph is freed. ``.grad`` itself is used
only for its values: under :class:`mpisgd.DistributedOptimizer`, whose hooks
run after this one, ``.grad`` is the flat gradient buffer (averaged by
``sync``), and ``D`` is computed before any algorithm changes the
parameters. ``D`` is this rank's estimate (its mini-batch, its own ``z``);
when the wrapper's algorithm averages gradients (``sync``) it sets
:attr:`AdaHessian.average_hessian` and ``D`` is averaged over the ranks too
in ``step()``, so every rank applies the same update. ``m`` and ``v`` are
per-rank state, like SGD's momentum buffers.

Example (``mpiexec -n 2 python -m mpi4py example.py``)::

    import torch
    from mpi4py import MPI
    import mpisgd

    comm = MPI.COMM_WORLD
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = mpisgd.SyncSGD(mpisgd.AdaHessian(model.parameters(), seed=comm.rank), comm=comm)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(comm.rank))
    y = (x[:, 0] > 0).long()
    for step in range(10):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        mpisgd.torch.adahessian.backward_with_graph(loss)  # loss.backward(create_graph=True), no warning
        opt.step()
    opt.finish()
    print(comm.rank, round(loss.item(), 4), opt.statistics()["bytes_sent"])
    opt.close()
"""

import math
import warnings
import weakref

import torch

GRAPH_WARNING = r"Using backward\(\) with create_graph=True"


def rademacher(like: torch.Tensor, generator=None) -> torch.Tensor:
    """A tensor shaped like ``like`` of independent +1/-1 entries, each with probability 1/2."""
    bits = torch.randint(0, 2, like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return bits * 2 - 1


def hutchinson_diagonal(grads, params, vectors=None, generator=None, retain_graph=False) -> list:
    """``z * (H z)`` per parameter [Hutchinson]: one sample of the Hessian diagonal.

    ``grads``: the gradients of the loss with respect to ``params``, with their graph
    (``create_graph=True``); a gradient without a graph (it does not depend on any
    parameter) contributes nothing. ``vectors``: the ``z`` to use (default: Rademacher
    draws from ``generator``). Returns signed estimates shaped like ``params``."""
    params = list(params)
    vectors = list(vectors) if vectors is not None else [rademacher(p, generator) for p in params]
    live = [i for i, g in enumerate(grads) if g.requires_grad]
    products = [None] * len(params)
    if live:
        found = torch.autograd.grad([grads[i] for i in live], [params[i] for i in live],
                                    grad_outputs=[vectors[i] for i in live], retain_graph=retain_graph,
                                    allow_unused=True)
        for i, hz in zip(live, found):
            products[i] = hz
    return [torch.zeros_like(p) if hz is None else z * hz.detach() for p, z, hz in zip(params, vectors, products)]


def spatial_average(diagonal: torch.Tensor) -> torch.Tensor:
    """``|D|``, averaged over the spatial dimensions (2, 3) of a 4-D conv weight (kept as size-1 dims)."""
    magnitude = diagonal.abs()
    return magnitude.mean(dim=(2, 3), keepdim=True) if magnitude.dim() == 4 else magnitude


class AdaHessian(torch.optim.Optimizer):
    """AdaHessian; call ``loss.backward(create_graph=True)`` before each ``step()``.

    ``seed``: the Rademacher vectors come from a ``torch.Generator`` seeded with it
    (one per device); ``None`` draws them from torch's global generator. Build it
    before wrapping it (``DistributedOptimizer`` does so by construction): its hooks
    must see the gradient before anything replaces ``.grad``.
    """

    create_graph = True  # the training loop must call backward(create_graph=True)

    def __init__(self, params, lr=0.15, betas=(0.9, 0.999), eps=1e-4, weight_decay=0.0, hessian_power=1.0, *,
                 seed=None):
        if not lr >= 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if not eps >= 0:
            raise ValueError(f"invalid eps: {eps}")
        if not all(0 <= beta < 1 for beta in betas) or len(betas) != 2:
            raise ValueError(f"invalid betas (each in [0, 1)): {betas}")
        if not weight_decay >= 0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        if not 0 <= hessian_power <= 1:
            raise ValueError(f"invalid hessian_power (in [0, 1]): {hessian_power}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, hessian_power=hessian_power)
        super().__init__(params, defaults)
        self.seed = seed
        self._generators = {}  # device -> torch.Generator (seeded runs)
        self._graph_grads = {}  # param -> its gradient with the graph, from the backward pass in progress
        self._diagonal = {}  # param -> D of the last backward pass (signed, not yet averaged)
        # in-place mean over the ranks of a flat tensor; set by DistributedOptimizer when its algorithm
        # averages gradients (sync): D is then averaged like g. None: D stays this rank's.
        self.average_hessian = None
        this = weakref.ref(self)  # the hooks must not keep the optimizer alive
        self._hooks = [p.register_post_accumulate_grad_hook(lambda p, this=this: this() and this()._keep(p))
                       for group in self.param_groups for p in group["params"] if p.requires_grad]

    def _keep(self, param) -> None:
        """Post-accumulate-grad hook: in a backward pass that builds a graph, keep the gradient."""
        if not torch.is_grad_enabled():
            return  # backward() without create_graph: nothing to differentiate
        if not self._graph_grads:  # first gradient of this pass: estimate once the pass is over
            torch.autograd.Variable._execution_engine.queue_callback(self._estimate)
        self._graph_grads[param] = param.grad

    def _generator(self, device):
        if self.seed is None:
            return None
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def _estimate(self) -> None:
        """D from the kept gradients (one Hessian-vector product); frees their graph."""
        if not self._graph_grads:
            return
        params, grads = list(self._graph_grads), list(self._graph_grads.values())
        self._graph_grads = {}
        vectors = [rademacher(p, self._generator(p.device)) for p in params]
        with torch.enable_grad():
            self._diagonal = dict(zip(params, hutchinson_diagonal(grads, params, vectors)))

    def _averaged_diagonals(self, params) -> list:
        """This step's D per parameter (zero where no gradient had a graph), averaged over ranks if asked."""
        diagonals = [self._diagonal.get(p) for p in params]
        diagonals = [torch.zeros_like(p) if d is None else d for p, d in zip(params, diagonals)]
        if self.average_hessian is not None and diagonals:
            flat = torch.cat([d.reshape(-1) for d in diagonals])
            self.average_hessian(flat)
            diagonals = [part.view_as(p) for part, p in zip(flat.split([p.numel() for p in params]), params)]
        return diagonals

    @torch.no_grad()
    def step(self, closure=None):
        """One AdaHessian update from ``.grad`` (g) and the last backward pass's Hessian diagonal (D)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._estimate()  # a pass whose end callback has not run (none in the usual flow)
        if not self._diagonal:
            raise RuntimeError("AdaHessian needs the gradient's graph: call loss.backward(create_graph=True) "
                               "before step()")
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        diagonals = dict(zip(params, self._averaged_diagonals(params)))
        self._diagonal = {}
        for group in self.param_groups:
            (beta1, beta2), k = group["betas"], group["hessian_power"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.requires_grad:  # standalone use: drop the graph (and the param <-> grad cycle)
                    p.grad = p.grad.detach()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)  # m
                    state["exp_hessian_diag_sq"] = torch.zeros_like(p)  # v
                state["step"] += 1
                m, v, t = state["exp_avg"], state["exp_hessian_diag_sq"], state["step"]
                d = spatial_average(diagonals[p])
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(d, d, value=1 - beta2)
                denominator = (v.sqrt() / math.sqrt(1 - beta2**t)).pow_(k).add_(group["eps"])
                update = m.div(1 - beta1**t).div_(denominator)
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                p.sub_(update, alpha=group["lr"])
        return loss


def backward_with_graph(loss: torch.Tensor) -> None:
    """``loss.backward(create_graph=True)`` without torch's reference-cycle warning.

    The cycle it warns about (a parameter's ``.grad`` holding a graph that holds
    the parameter) does not outlive :meth:`AdaHessian.step`, which drops the graph;
    under ``DistributedOptimizer`` ``.grad`` never keeps it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=GRAPH_WARNING, category=UserWarning)
        loss.backward(create_graph=True)
