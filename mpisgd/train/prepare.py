"""Everything a run builds before its first step, checked on every rank together.

:func:`prepare` loads this rank's shard and the test set, builds the model and
opens the metrics file; :func:`distributed_optimizer` wraps the local optimizer
(``torch.optim.SGD`` or :class:`~mpisgd.torch.AdaHessian`, :func:`local_optimizer`)
in the chosen algorithm and plugs in this rank's throttle. A problem on any
rank is a UsageError on every rank.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..algorithm import get_algorithm
from ..comm import select_device
from ..errors import UsageError
from ..torch import AdaHessian, DistributedOptimizer
from .data import load_dataset
from .metrics import MetricsWriter
from .models import build_model
from .privacy import PrivateRun
from .roles import Roles
from .step import steps_per_epoch
from .straggler import Straggler


@dataclass
class Prepared:
    """What :func:`prepare` built: the model, this rank's data as tensors, the metrics file, the straggler."""

    model: torch.nn.Module
    info: object  # the dataset's DatasetInfo
    device: object
    train: tuple  # (inputs, targets) of this rank's shard
    test: tuple  # (inputs, targets) of the whole test set (each rank evaluates its rows, evaluate.test_rows)
    metrics: MetricsWriter
    straggler: Straggler
    roles: Roles  # servers and workers (master-worker), this rank's injected failure
    privacy: object = None  # a PrivateRun with --dp (noise resolved), else None


def _tensors(x, y, dtype, device):
    x = torch.from_numpy(x)
    x = x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    y = torch.from_numpy(y)
    y = y.to(device=device, dtype=dtype) if y.is_floating_point() else y.to(device)
    return x, y


def prepare(config, harness) -> Prepared:
    """Data, model, metrics file, straggler and role of this rank; UsageError on every rank if any rank fails."""
    problem, prepared = "", None
    try:
        config.validate()
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        metrics = MetricsWriter(config.metrics, rank=harness.rank, world_size=harness.size,
                                algorithm=config.algorithm)
        data = load_dataset(config.dataset, seed=config.seed, **config.data_options)
        roles = Roles(config, harness.size, harness.rank)
        shard = roles.shard(data.y_train, config.partition, config.seed)
        straggler = Straggler(config, harness.rank, harness.size)
        device = select_device(harness, config.device)
        model = build_model(config.model, data.info, hidden=config.hidden, seed=config.seed, dtype=dtype).to(device)
        privacy = None
        if config.dp != "off":
            planned = config.epochs * steps_per_epoch(data.info.n_train, roles.trainers, config.batch_size)
            privacy = PrivateRun.of(config, get_algorithm(config.algorithm), model, data.info.n_train,
                                    roles.trainers, planned)
        prepared = Prepared(model=model, info=data.info, device=device, metrics=metrics, straggler=straggler,
                            roles=roles, privacy=privacy,
                            train=_tensors(data.x_train[shard], data.y_train[shard], dtype, device),
                            test=_tensors(data.x_test, data.y_test, dtype, device))
    except (ValueError, OSError, RuntimeError) as error:  # UsageError is a ValueError
        problem = str(error)
    harness.check_all(not problem, problem, UsageError)
    if prepared.privacy is not None:
        prepared.privacy.resolve(harness)  # a budget's noise: planned on rank 0
    return prepared


def local_optimizer(config, model, rank: int) -> torch.optim.Optimizer:
    """``--local-optimizer``: torch's SGD, or AdaHessian with its Rademacher stream from (seed, rank)."""
    if config.local_optimizer == "adahessian":
        seed = int(np.random.SeedSequence([config.seed, rank]).generate_state(1)[0])
        return AdaHessian(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, seed=seed)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.resolved_momentum(),
                           weight_decay=config.weight_decay, nesterov=config.nesterov)


def distributed_optimizer(config, model, comm, harness, throttle=None) -> DistributedOptimizer:
    """The algorithm around the local optimizer; ``throttle`` goes into its messenger on this rank.

    A throttle (given on some ranks only) slows a messenger's outbox, which only the
    asynchronous gossip algorithms use (pairwise rounds exchange directly): with any other
    algorithm every rank raises UsageError."""
    optimizer = local_optimizer(config, model, harness.rank)
    names = [name for name, _ in model.named_parameters()]
    # every rank builds the same model from the seed: check that (a digest), no model-sized broadcast
    dist = DistributedOptimizer(optimizer, config.algorithm, comm=comm, names=names, init="check",
                                **config.algorithm_options)
    messenger = getattr(dist.algorithm, "messenger", None)
    try:
        harness.check_all(throttle is None or (messenger is not None and dist.algorithm.asynchronous),
                          "a throttle slows the outbox of the asynchronous gossip algorithms (swift, divshare, "
                          f"adpsgd); {config.algorithm!r} sends nothing through one", UsageError)
    except UsageError:
        dist.close()
        raise
    if throttle is not None:
        messenger.throttle = throttle
    return dist
