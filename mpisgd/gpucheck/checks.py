"""The checks of the GPU readiness check and their oracles (overview: :mod:`mpisgd.gpucheck`)."""

import copy
import os
from contextlib import contextmanager

import numpy as np

from ..comm.mpi import MPI

TOLERANCE = 1e-9  # float64; device and host matmuls differ by rounding only (~1e-15)
LR = 0.1


class Skip(Exception):
    """The check cannot run here (the message says why)."""


class Context:
    """What every check needs: world, device, array libraries, results shared between checks."""

    def __init__(self, args):
        self.world, self.dry_run, self.args = MPI.COMM_WORLD, args.cpu_dry_run, args
        self.torch, self.cupy = _optional("torch"), None if self.dry_run else _optional("cupy")
        self.cuda = bool(not self.dry_run and self.torch and self.torch.cuda.is_available())
        if self.cupy is not None and not _cupy_has_device(self.cupy):
            self.cupy = None
        self.device = "cpu" if self.dry_run else "cuda"
        self.mpi_cuda = mpi_cuda_support()
        self.results = {}

    def need_torch_device(self):
        if self.torch is None:
            raise Skip("torch is not installed")
        if not (self.dry_run or self.cuda):
            raise Skip("no CUDA: torch.cuda.is_available() is False")

    def arrays(self):
        """The array library of the flat checks: cupy, or numpy in the dry run."""
        if self.dry_run:
            return np
        if self.cupy is None:
            raise Skip("no CUDA for cupy: cupy is not installed (pip install .[gpu]) or sees no device")
        return self.cupy

    def need_cuda_aware(self):
        if not self.dry_run and not self.mpi_cuda and self.args.cuda_aware != "force":
            raise Skip(f"the MPI library does not report CUDA support (MPIX_Query_cuda_support: "
                       f"{self.mpi_cuda}); --cuda-aware force runs it anyway")

    def gather(self, array):
        return np.array(self.world.allgather(np.asarray(array, dtype=np.float64)))


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def _cupy_has_device(cupy) -> bool:
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver
        return False


def mpi_cuda_support():
    """``MPIX_Query_cuda_support()`` of the loaded libmpi (Open MPI, MPICH): True/False, None if unknown."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = dict.fromkeys(line.split()[-1] for line in maps if "/libmpi" in line)
    except OSError:
        return None
    for path in paths:
        try:
            query = ctypes.CDLL(path, mode=os.RTLD_NOLOAD).MPIX_Query_cuda_support
        except (OSError, AttributeError):
            continue
        query.restype = ctypes.c_int
        return bool(query())
    return None


def host(array) -> np.ndarray:
    """A float64 numpy copy of a numpy, cupy or torch array."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    elif hasattr(array, "get"):
        array = array.get()
    return np.array(array, dtype=np.float64)


def check_close(what: str, got, expected, tolerance: float = TOLERANCE) -> None:
    error = float(np.max(np.abs(np.asarray(got) - np.asarray(expected)))) if np.size(expected) else 0.0
    if not error <= tolerance:
        raise AssertionError(f"{what}: max |difference| {error:.3g} > {tolerance:g}")


# -- checks ---------------------------------------------------------------------------------
def check_select_device(ctx):
    from ..comm import Communicator, select_device

    if not ctx.cuda:
        raise Skip("no CUDA")
    torch, n_gpus = ctx.torch, ctx.torch.cuda.device_count()
    with Communicator(ctx.world) as comm:
        device, local_rank = select_device(comm, prefer="cuda"), comm.local_rank
    ctx.device = device
    if ctx.cupy is not None:
        ctx.cupy.cuda.Device(int(device.split(":")[1])).use()
    landed = torch.ones(2, device="cuda").device.index
    seen = ctx.world.allgather((device, local_rank, landed))
    for rank, (dev, local, index) in enumerate(seen):
        assert dev == f"cuda:{local % n_gpus}" and index == local % n_gpus, f"rank {rank} (local {local}): {dev}"
    if n_gpus == 1:
        assert all(dev == "cuda:0" for dev, _, _ in seen), seen


def _torch_run(ctx, wrapper: str, steps: int, step_oracle, **options):
    """Train a small float64 MLP with ``mpisgd.<wrapper>``; check every step and finish().

    ``step_oracle(before, grads, after)`` gets every rank's model before the step, its
    gradient (computed by torch on the CPU) and its model after, stacked by rank."""
    import mpisgd

    torch = ctx.torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
    reference = copy.deepcopy(model)  # CPU: the oracle's gradients
    generator = torch.Generator().manual_seed(1000 + ctx.world.rank)
    x = torch.randn(32, 8, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (32,), generator=generator)
    model.to(ctx.device)
    xd, yd = x.to(ctx.device), y.to(ctx.device)
    opt = getattr(mpisgd, wrapper)(torch.optim.SGD(model.parameters(), lr=LR), comm=ctx.world, **options)
    loss_fn = torch.nn.functional.cross_entropy
    for step in range(steps):
        before = host(opt.flat.params)
        torch.nn.utils.vector_to_parameters(torch.from_numpy(before), reference.parameters())
        reference.zero_grad()
        loss_fn(reference(x), y).backward()
        grad = torch.cat([p.grad.reshape(-1) for p in reference.parameters()])
        opt.zero_grad()
        loss_fn(model(xd), yd).backward()
        opt.step()
        step_oracle(step, ctx.gather(before), ctx.gather(grad.numpy()), ctx.gather(host(opt.flat.params)))
    models = ctx.gather(host(opt.flat.params))
    opt.finish()
    final = ctx.gather(host(opt.flat.params))
    opt.close()
    check_close("after finish(): every model is the mean of the models", final, models.mean(axis=0)[None, :])
    return final[ctx.world.rank]


@contextmanager
def _environment(**values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


def _sync_oracle(step, before, grads, after):
    check_close(f"sync step {step}: x - lr mean(g)", after, before - LR * grads.mean(axis=0))


def check_torch_sync_staged(ctx):
    ctx.need_torch_device()
    ctx.results["torch_sync"] = _torch_run(ctx, "SyncSGD", 4, _sync_oracle, bucket_mb=0.0005)


def check_torch_sync_cuda_aware(ctx):
    from ..comm import Communicator

    ctx.need_torch_device()
    ctx.need_cuda_aware()
    with _environment(MPISGD_CUDA_AWARE="1"):  # the opt-in by environment variable
        with Communicator(ctx.world) as probe:
            assert probe.cuda_aware, "MPISGD_CUDA_AWARE=1 did not turn CUDA-aware mode on"
        final = _torch_run(ctx, "SyncSGD", 4, _sync_oracle, bucket_mb=0.0005)
    if "torch_sync" in ctx.results:
        check_close("CUDA-aware against staged", final, ctx.results["torch_sync"])


def check_torch_cocod(ctx):
    def oracle(step, before, grads, after):
        check_close(f"cocod step {step}: the model sum", after.sum(axis=0), (before - LR * grads).sum(axis=0))

    ctx.need_torch_device()
    _torch_run(ctx, "CoCoDSGD", 6, oracle, period=2)


def check_torch_gossip(ctx):
    def oracle(step, before, grads, after):
        if len(before) == 2:  # each rank pulls from the other: halfway to its pre-step model
            pulled = before - LR * grads - (before - before[::-1]) / 2
            check_close(f"gossip step {step}: x - lr g - (x - x_peer)/2", after, pulled)

    ctx.need_torch_device()
    _torch_run(ctx, "GossipSGD", 5, oracle, variant="pull")


def check_torch_dp(ctx):
    """The all-reduce DP release on the device against per-sample gradients on the CPU (the module says more)."""
    from ..comm import Communicator
    from ..privacy.clipping import weight_rule
    from ..privacy.noise import GaussianNoise, dp_release
    from ..privacy.per_sample import PerSampleGradients

    ctx.need_torch_device()
    torch, loss = ctx.torch, ctx.torch.nn.functional.cross_entropy
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
    weight, size, rank, expected_batch = weight_rule("psac", 0.5), ctx.world.size, ctx.world.rank, 30.0

    def data(r):
        g = torch.Generator().manual_seed(2000 + r)
        return torch.randn(40, 8, generator=g, dtype=torch.float64), torch.randint(0, 4, (40,), generator=g)

    reference = PerSampleGradients(model, loss)
    expected = sum(weight(g.norm(dim=1)) @ g for g in (reference.per_sample(*data(r)) for r in range(size)))
    x, y = data(rank)
    on_device = PerSampleGradients(copy.deepcopy(model).to(ctx.device), loss, max_batch=16)
    with Communicator(ctx.world) as comm:
        mine = on_device.weighted_sum(x.to(ctx.device), y.to(ctx.device), weight).sum
        released = dp_release(mine, expected_batch, comm, GaussianNoise(0.0, 0.5, ranks=size, rank=rank))
        check_close("DP release on the device: the ranks' weighted sums", host(released),
                    expected.numpy() / expected_batch)
        noise = GaussianNoise(1.3, 0.5, ranks=size, rank=rank, placement="split")
        zeros = torch.zeros(200_000, dtype=torch.float64, device=ctx.device)
        ratio = float(host(dp_release(zeros, 1.0, comm, noise)).std()) / (1.3 * 0.5)
    assert abs(ratio - 1) < 0.02, f"split noise over {size} ranks: released std/(sigma C) = {ratio:.4f}"


def _flat_sync(ctx, xp, cuda_aware: bool) -> np.ndarray:
    from ..collective import BucketedAllReduce
    from ..comm import Communicator
    from ..flat import FlatParams

    values = [np.random.default_rng(10 + r).standard_normal(300_001) for r in range(ctx.world.size)]
    grads = xp.array(values[ctx.world.rank])  # a copy: the oracle keeps the inputs
    with Communicator(ctx.world, cuda_aware=cuda_aware) as comm:
        sync = BucketedAllReduce(FlatParams(xp.zeros_like(grads), grads), comm=comm)
        sync.before_step()
        sync.close()
    result = host(grads)
    check_close("flat all-reduce: the mean of the ranks' gradients", result, np.mean(values, axis=0), 1e-12)
    if xp is not np:
        check_close("cupy against numpy", result, _flat_sync(ctx, np, cuda_aware), 1e-12)
    return result


def check_cupy_sync_staged(ctx):
    ctx.results["cupy_sync"] = _flat_sync(ctx, ctx.arrays(), cuda_aware=False)


def check_cupy_sync_cuda_aware(ctx):
    xp = ctx.arrays()
    ctx.need_cuda_aware()
    result = _flat_sync(ctx, xp, cuda_aware=True)
    if "cupy_sync" in ctx.results:
        check_close("CUDA-aware against staged", result, ctx.results["cupy_sync"], 1e-12)


def _flat_cocod(ctx, xp, steps: int = 9) -> np.ndarray:
    from ..collective import CoCoD
    from ..flat import FlatParams

    targets = [np.random.default_rng(20 + r).standard_normal(1000) for r in range(ctx.world.size)]
    target, x = xp.asarray(targets[ctx.world.rank]), xp.zeros(1000)
    cocod = CoCoD(FlatParams(x), comm=ctx.world, period=3)
    for _ in range(steps):
        x -= LR * (x - target)
        cocod.after_step()
    cocod.finish()
    cocod.close()
    expected = np.mean(targets, axis=0) * (1 - (1 - LR) ** steps)
    check_close("cocod after finish(): mean(b) (1 - (1 - lr)^T) on every rank", ctx.gather(host(x)), expected[None, :])
    if xp is not np:
        check_close("cupy against numpy", host(x), _flat_cocod(ctx, np, steps), 1e-12)
    return host(x)


def check_cupy_cocod(ctx):
    _flat_cocod(ctx, ctx.arrays())


CHECKS = [check_select_device, check_torch_sync_staged, check_torch_sync_cuda_aware, check_torch_cocod,
          check_torch_gossip, check_torch_dp, check_cupy_sync_staged, check_cupy_sync_cuda_aware, check_cupy_cocod]
