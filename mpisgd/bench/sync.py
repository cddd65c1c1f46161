"""Training throughput of :class:`mpisgd.SyncSGD` against a hand-written loop and torch DDP.

Every variant trains its own copy of the same model (same initial weights,
same per-rank synthetic batches, same ``torch.optim.SGD`` with momentum 0.9)
in the same MPI processes:

``sync``          ``mpisgd.SyncSGD(torch.optim.SGD(...), comm=MPI.COMM_WORLD)``:
                  bucketed ``Iallreduce`` started from backward hooks.
``handwritten``   what a careful user writes with mpi4py: the gradients are
                  views into one preallocated flat buffer, and after
                  ``backward()`` one blocking ``Allreduce`` on that buffer,
                  a division by ``p`` and ``optimizer.step()``.
``ddp_gloo``      ``torch.nn.parallel.DistributedDataParallel`` on the gloo
                  backend, its process group set up from MPI (rank and size
                  from ``COMM_WORLD``, a free port chosen by rank 0).

Models: MLPs (ReLU between the layers, built as :mod:`mpisgd.train.models`
builds its ``mlp``): ``small`` 64-128-128-10, 26k parameters; ``large``
512-2048-2048-10, 5.3M parameters; ``digits`` 64-256-10, 19k parameters, the
digits MLP, whose step takes about a millisecond, so that the per-step Python
work of SyncSGD (hooks, bucket book-keeping, requests) shows. Each model
size runs ``--warmup`` untimed steps per variant, then ``--blocks`` rounds
of ``--steps`` timed steps per variant, interleaved (see
:mod:`.timing`). Throughput: steps/s of the slowest rank, median block.
Ratios ``sync_over_handwritten`` (goal >= 0.9) and ``sync_over_ddp_gloo``
per model size. After timing, every variant must hold identical
parameters on all ranks (else the run fails: a variant that does not
average gradients would be timed for nothing); the largest difference
between the variants (same maths, same data, another summation order) is
recorded.

torch is imported inside the functions: the process that only parses the
options and re-launches under mpiexec then starts quickly.
"""

import socket
from datetime import timedelta

from mpi4py import MPI

from ..errors import UsageError
from .report import progress
from .timing import interleave, ratio, summarize

SUMMARY = "training steps/s of SyncSGD against a hand-written Allreduce loop and DDP (gloo)"
GOALS = {"sync_over_handwritten": 0.9}
RATE = "steps_per_s"
RANK_TOLERANCE = 1e-5  # relative: every rank applies the same averaged gradient
VARIANTS = ("sync", "handwritten", "ddp_gloo")
MODEL_LAYERS = {"small": (64, 128, 128, 10), "large": (512, 2048, 2048, 10),  # features, hidden..., classes
                "digits": (64, 256, 10)}
QUICK_LAYERS = {"small": (16, 32, 32, 10), "large": (64, 256, 256, 10), "digits": (64, 256, 10)}
DEFAULTS = {"steps": {"small": 60, "large": 4, "digits": 100}, "blocks": 9, "warmup": 5}
QUICK = {"steps": {"small": 3, "large": 2, "digits": 3}, "blocks": 2, "warmup": 2}


def add_arguments(parser) -> None:
    parser.add_argument("--models", default=",".join(MODEL_LAYERS),
                        help=f"model sizes to run, comma separated (default {','.join(MODEL_LAYERS)})")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"variants to run, comma separated (default {','.join(VARIANTS)})")
    parser.add_argument("--steps", type=int, help="timed steps per block and variant, for every model size "
                        f"(default {DEFAULTS['steps']}; --quick {QUICK['steps']})")
    parser.add_argument("--blocks", type=int, help=f"timed blocks per variant (default {DEFAULTS['blocks']}; "
                        f"--quick {QUICK['blocks']})")
    parser.add_argument("--warmup", type=int, help=f"untimed steps per variant first (default {DEFAULTS['warmup']})")
    parser.add_argument("--batch", type=int, default=32, help="samples per rank and step (default 32)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9; default 0.01)")
    parser.add_argument("--bucket-mb", type=float, help="SyncSGD bucket size in MiB (default: mpisgd's default)")


def resolve_settings(args) -> dict:
    """The run's settings from the options (``--quick`` picks other defaults); UsageError if invalid."""
    base = QUICK if args.quick else DEFAULTS
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODEL_LAYERS)) + sorted(set(variants) - set(VARIANTS))
    if unknown or not models or not variants:
        raise UsageError(f"unknown or missing --models/--variants {unknown}: models are {list(MODEL_LAYERS)}, "
                         f"variants {list(VARIANTS)}")
    steps = {name: args.steps if args.steps is not None else base["steps"][name] for name in models}
    settings = {
        "models": {name: list((QUICK_LAYERS if args.quick else MODEL_LAYERS)[name]) for name in models},
        "variants": [name for name in VARIANTS if name in variants],
        "steps": steps,
        "blocks": args.blocks if args.blocks is not None else base["blocks"],
        "warmup": args.warmup if args.warmup is not None else base["warmup"],
        "batch": args.batch,
        "lr": args.lr,
        "momentum": 0.9,
        "bucket_mb": args.bucket_mb,
    }
    if min(steps.values()) < 1 or settings["blocks"] < 1 or settings["warmup"] < 0 or args.batch < 1:
        raise UsageError("--steps, --blocks and --batch must be >= 1 and --warmup >= 0")
    if args.lr <= 0 or (args.bucket_mb is not None and args.bucket_mb <= 0):
        raise UsageError("--lr and --bucket-mb must be positive")
    return settings


class Workload:
    """One model size: the model builder, this rank's batches, the local optimizer."""

    def __init__(self, comm, layers: list, settings: dict, seed: int, n_batches: int = 4):
        import torch

        self.layers = layers
        features, classes = layers[0], layers[-1]
        self.seed = seed
        self.lr = settings["lr"]
        self.momentum = settings["momentum"]
        generator = torch.Generator().manual_seed(1_000_003 * seed + comm.Get_rank())  # other data per rank
        self.batches = [
            (torch.randn(settings["batch"], features, generator=generator),
             torch.randint(0, classes, (settings["batch"],), generator=generator))
            for _ in range(n_batches)
        ]

    def model(self):
        """A fresh MLP; the same initial weights (from the seed alone) on every rank and for every variant."""
        import torch
        from torch import nn

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            modules = []
            for inputs, outputs in zip(self.layers[:-1], self.layers[1:]):
                modules += [nn.Linear(inputs, outputs), nn.ReLU()]
            return nn.Sequential(*modules[:-1])

    def optimizer(self, parameters):
        import torch

        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum)

    def loss(self, model, step: int):
        import torch.nn.functional as F

        x, y = self.batches[step % len(self.batches)]
        return F.cross_entropy(model(x), y)


class Variant:
    """One way to train data-parallel: a model copy, its optimizer and ``step()``."""

    def __init__(self, workload):
        self.workload = workload
        self.steps = 0

    def step(self) -> None:
        self.train_step(self.workload.loss(self.model, self.steps))  # DDP: forward through the wrapper
        self.steps += 1

    def run(self, steps: int):
        """An action running ``steps`` training steps (for :func:`~.timing.interleave`)."""
        def action():
            for _ in range(steps):
                self.step()

        return action

    @property
    def module(self):
        return self.model

    def parameter_vector(self):
        import torch

        return torch.nn.utils.parameters_to_vector(self.module.parameters()).detach()

    def close(self) -> None:
        pass


class SyncVariant(Variant):
    """mpisgd.SyncSGD around torch SGD, used exactly as the README shows."""

    def __init__(self, workload, comm, bucket_mb=None):
        import mpisgd

        super().__init__(workload)
        self.model = workload.model()
        options = {} if bucket_mb is None else {"bucket_mb": bucket_mb}
        self.optimizer = mpisgd.SyncSGD(workload.optimizer(self.model.parameters()), comm=comm, **options)

    def train_step(self, loss) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def close(self) -> None:
        self.optimizer.finish()
        self.optimizer.close()


class HandwrittenVariant(Variant):
    """The careful mpi4py user: gradients as views into one buffer, one blocking Allreduce per step."""

    def __init__(self, workload, comm):
        import torch

        super().__init__(workload)
        self.model = workload.model()
        self.comm = comm
        self.scale = 1.0 / comm.Get_size()
        params = list(self.model.parameters())
        self.grads = torch.zeros(sum(p.numel() for p in params))
        offset = 0
        for p in params:
            p.grad = self.grads[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.optimizer = workload.optimizer(params)

    def train_step(self, loss) -> None:
        self.grads.zero_()
        loss.backward()  # accumulates in place into the views
        if self.steps == 0:
            self._check_views()
        self.comm.Allreduce(MPI.IN_PLACE, self.grads, op=MPI.SUM)
        self.grads.mul_(self.scale)
        self.optimizer.step()

    def _check_views(self) -> None:
        start = self.grads.data_ptr()
        end = start + self.grads.numel() * self.grads.element_size()
        if any(not start <= p.grad.data_ptr() < end for p in self.model.parameters()):
            raise RuntimeError("backward() replaced a gradient view: the hand-written baseline would be wrong")


class DDPVariant(Variant):
    """torch DistributedDataParallel on gloo (process group from :func:`gloo_group`)."""

    def __init__(self, workload):
        from torch.nn.parallel import DistributedDataParallel

        super().__init__(workload)
        self.model = DistributedDataParallel(workload.model())
        self.optimizer = workload.optimizer(self.model.parameters())

    @property
    def module(self):
        return self.model.module

    def train_step(self, loss) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class gloo_group:
    """Context manager: a torch.distributed gloo group over the MPI ranks.

    Rank and size come from ``comm``; rank 0 picks a free TCP port and
    broadcasts it with mpi4py. The address is 127.0.0.1 when all ranks
    share a node, else rank 0's host name.
    """

    def __init__(self, comm):
        self.comm = comm

    def __enter__(self):
        import os

        import torch.distributed as dist

        if not dist.is_available() or not dist.is_gloo_available():
            raise UsageError("this torch has no gloo backend: run with --variants sync,handwritten")
        hosts = self.comm.allgather(socket.gethostname())
        address = "127.0.0.1" if len(set(hosts)) == 1 else hosts[0]
        port = self.comm.bcast(_free_port() if self.comm.Get_rank() == 0 else None, root=0)
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = address, str(port)
        dist.init_process_group("gloo", init_method="env://", rank=self.comm.Get_rank(),
                                world_size=self.comm.Get_size(), timeout=timedelta(seconds=120))
        return self

    def __exit__(self, *exc):
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def build_variants(names, workload, comm, settings) -> dict:
    builders = {
        "sync": lambda: SyncVariant(workload, comm, settings["bucket_mb"]),
        "handwritten": lambda: HandwrittenVariant(workload, comm),
        "ddp_gloo": lambda: DDPVariant(workload),
    }
    return {name: builders[name]() for name in names}


def agreement(comm, variants: dict) -> dict:
    """Largest parameter differences: between ranks (per variant) and against ``sync`` (if run).

    Ranks must agree (each variant averages the same gradients everywhere),
    else the run fails; the variants may drift apart a little (another
    summation order), which is only recorded.
    """
    vectors = {name: variant.parameter_vector() for name, variant in variants.items()}
    across_ranks = {}
    for name, vector in vectors.items():
        reference = vector.clone()
        comm.Bcast(reference, root=0)
        across_ranks[name] = comm.allreduce(float((vector - reference).abs().max()), op=MPI.MAX)
    against_sync = {
        name: float((vector - vectors["sync"]).abs().max())
        for name, vector in vectors.items() if name != "sync" and "sync" in vectors
    }
    scale = max(float(v.abs().max()) for v in vectors.values())
    broken = sorted(name for name, diff in across_ranks.items() if diff > RANK_TOLERANCE * max(scale, 1.0))
    if broken:  # the variant does not average gradients: its timing would be meaningless
        raise RuntimeError(f"variant(s) {broken} hold different parameters on different ranks after "
                           f"training: {across_ranks}")
    return {"max_abs_diff_across_ranks": across_ranks, "max_abs_diff_vs_sync": against_sync,
            "max_abs_param": scale}


def measure_model(comm, label: str, settings: dict, seed: int) -> dict:
    """Warm up, then time every variant in interleaved blocks on one model size."""
    layers = settings["models"][label]
    workload = Workload(comm, layers, settings, seed)
    variants = build_variants(settings["variants"], workload, comm, settings)
    try:
        for variant in variants.values():
            for _ in range(settings["warmup"]):
                variant.step()
        steps = settings["steps"][label]
        samples = interleave(comm, {name: v.run(steps) for name, v in variants.items()},
                             rounds=settings["blocks"], warmup=0)
        checks = agreement(comm, variants)
        parameters = sum(p.numel() for p in next(iter(variants.values())).module.parameters())
    finally:
        for variant in variants.values():
            variant.close()
    return {
        "model": label,
        "layers": layers,
        "parameters": parameters,
        "steps_per_block": steps,
        **{name: summarize(seconds, steps, RATE) for name, seconds in samples.items()},
        "agreement": checks,
    }


def _ratios(entry: dict) -> dict:
    pairs = {"sync_over_handwritten": "handwritten", "sync_over_ddp_gloo": "ddp_gloo"}
    return {key: ratio(entry["sync"], entry[other], RATE)
            for key, other in pairs.items() if "sync" in entry and other in entry}


def run(comm, args):
    """Run the benchmark; return (config, results, ratios)."""
    import contextlib

    settings = resolve_settings(args)
    results, ratios = [], {}
    group = gloo_group(comm) if "ddp_gloo" in settings["variants"] else contextlib.nullcontext()
    with group:
        for label in settings["models"]:
            entry = measure_model(comm, label, settings, args.seed)
            results.append(entry)
            for key, value in _ratios(entry).items():
                ratios.setdefault(key, {})[label] = value
            rates = ", ".join(f"{name} {entry[name][RATE]:.1f}" for name in settings["variants"])
            progress(comm, f"sync {label} ({entry['parameters']} params): steps/s {rates}")
    config = {**settings, "rate": "training steps per second (slowest rank), median of interleaved blocks"}
    return config, results, ratios
