"""Everything a training run needs, as one dataclass whose fields also describe their flags.

Each field is declared with :func:`setting`: its default and the help line
of its ``python -m mpisgd train`` flag, and where needed a ``check`` (a
function ``value -> complaint or None``, as the algorithms' options have),
``choices`` (a list, or a function returning one, for registries),
``needs`` (a condition on the other fields that must hold when the value is
not the default) and ``group`` (the section of ``--help``). The command
line is generated from these fields (:mod:`mpisgd.cli`) and
:meth:`TrainConfig.validate` runs their checks, so a new setting is one
edit here.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from ..algorithm import non_negative, positive
from ..errors import UsageError
from .checkpoint import parse_every
from .failures import parse_failures
from .partition import parse_partition

STRAGGLERS = "stragglers and failures (experiments)"
OUTPUT = "output"
DIAGNOSTICS = "diagnostics (docs/cluster.md)"
PRIVACY = "differential privacy (docs/privacy.md)"
CLUSTER = "checkpoints and preemption (docs/cluster.md)"
CHECKPOINTS = (lambda c: c.checkpoint_dir, "--checkpoint-dir DIR")
DP_RULES = ["off", "dpsgd", "nsgd", "autos", "psac"]
ACCOUNTANTS = ["rdp", "pld", "rdp-dpa"]  # mpisgd.privacy.accountant.KINDS, without importing it


def setting(default, help: str, *, check=None, choices=None, needs=None, group=None, keys=None, factory=None):
    """A TrainConfig field with its flag's help text, checks and help section in the metadata.

    ``keys`` (dict fields): one flag per key, ``{key: (help, default shown)}``;
    ``factory``: the default is ``factory()`` (mutable defaults)."""
    metadata = {"help": help, "check": check, "choices": choices, "needs": needs, "group": group, "keys": keys}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_of(name: str) -> str:
    """The command-line flag of a field or key: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def choices_of(spec) -> Optional[list]:
    """A field's choices: the list itself, or what the registry function returns."""
    return list(spec()) if callable(spec) else spec


def at_least(low):
    def check(value):
        return None if value >= low else f"must be at least {low}"

    return check


def below_one(value):
    return None if 0 <= value < 1 else "must be in [0, 1)"


def up_to_one(value):
    return None if 0 < value <= 1 else "must be in (0, 1]"


def open_unit(value):
    return None if 0 < value < 1 else "must be in (0, 1)"


DEFAULT_MOMENTUM = 0.9  # the local SGD's momentum with an algorithm that prefers none (local_momentum_default)
PRIVATE = (lambda c: c.dp != "off", "--dp RULE")  # the ``needs`` of the DP settings


def rank_list(text: str) -> list:
    """``"1,3"`` -> ``[1, 3]`` (sorted, distinct); UsageError when it is not rank numbers."""
    try:
        return sorted({int(r) for r in text.split(",") if r.strip()})
    except ValueError:
        raise UsageError(f"--slow-ranks must be rank numbers separated by commas, got {text!r}") from None


def _algorithms():
    from ..algorithm import ALGORITHMS

    return sorted(ALGORITHMS)


def _trainable(name):
    """A composition solver (AsyVRSC) is run by ``optimize``, not by ``train``."""
    from ..algorithm import ALGORITHMS

    if getattr(ALGORITHMS.get(name), "composition", False):
        return f"{name} solves composition problems: run `python -m mpisgd optimize --algorithm {name} ...`"
    return None


def _models():
    from .models import MODELS

    return MODELS


def _datasets():
    from .data import DATASETS

    return DATASETS


def _parsed(parse):
    """A check from a parser that raises its own UsageError."""
    def check(value):
        parse(value)

    return check


@dataclass
class TrainConfig:
    algorithm: str = setting("sync", "distributed algorithm", choices=_algorithms, check=_trainable)
    model: str = setting("mlp", "model", choices=_models)
    dataset: str = setting("digits", "dataset (all offline)", choices=_datasets)
    epochs: int = setting(10, "passes over the training data", check=at_least(1))
    batch_size: int = setting(32, "mini-batch size per rank", check=at_least(1))
    lr: float = setting(0.05, "learning rate (the default suits sgd; adahessian: start from its official code's 0.15)",
                        check=positive)
    local_optimizer: str = setting("sgd", "the optimizer each rank steps with: sgd (torch.optim.SGD) or adahessian "
                                   "(Yao et al. 2021, Hutchinson Hessian diagonal; recommended --lr 0.15, "
                                   "each step costs a second backward pass)", choices=["sgd", "adahessian"])
    momentum: Optional[float] = setting(
        None, "momentum of the local SGD optimizer (default: 0 with easgd, eamsgd and eamsgd-async, plain SGD "
        "as in their paper, eamsgd's momentum being its --local-momentum; 0.9 with the others)",
        check=below_one, needs=(lambda c: c.local_optimizer == "sgd", "--local-optimizer sgd"))
    weight_decay: float = setting(0.0, "weight decay of the local optimizer (adahessian: decoupled)",
                                  check=non_negative)
    nesterov: bool = setting(False, "Nesterov momentum in the local optimizer (torch's; the paper's EAMSGD is "
                             "--algorithm eamsgd)",
                             needs=(lambda c: c.resolved_momentum() > 0 and c.local_optimizer == "sgd",
                                    "--momentum > 0 and --local-optimizer sgd"))
    seed: int = setting(0, "one seed; rank r derives its streams from (seed, r)")
    partition: str = setting("iid", "iid or dirichlet:ALPHA (non-IID)", check=_parsed(parse_partition))
    hidden: int = setting(64, "hidden width (mlp, cnn) or factor rank (mf)", check=at_least(1))
    dtype: str = setting("float32", "parameter and data precision", choices=["float32", "float64"])
    device: str = setting("auto", "auto: a GPU per rank when present", choices=["auto", "cpu", "cuda"])
    threads: int = setting(1, "torch threads per rank", check=at_least(1))
    time_budget: Optional[float] = setting(
        None, "stop training after this many seconds (asynchronous algorithms: checked every step; "
        "the others: at evaluations)", check=positive)
    slow_ranks: str = setting("", "straggler ranks, e.g. 3 or 1,3", check=_parsed(rank_list), group=STRAGGLERS)
    slow_factor: float = setting(1.0, "the stragglers' local steps take this many times longer", check=at_least(1),
                                 needs=(lambda c: c.slow_ranks, "--slow-ranks"), group=STRAGGLERS)
    fail: str = setting("", "make worker ranks fail (master-worker algorithms): RANK:KIND@STEP[,...] with KIND "
                        "slow:FACTOR, silent, exit or kill, at the rank's local step STEP (docs/failures.md)",
                        check=_parsed(parse_failures), group=STRAGGLERS)
    dp: str = setting("off", "differentially private training with this per-sample clipping rule: dpsgd "
                      "(constant clipping), nsgd, autos (Auto-S) or psac (DP-PSAC)", choices=DP_RULES, group=PRIVACY)
    dp_clip: float = setting(1.0, "per-sample sensitivity C: every weighted per-sample gradient has norm <= C",
                             check=positive, needs=PRIVATE, group=PRIVACY)
    dp_r: Optional[float] = setting(None, "the rule's regularizer r (Auto-S: gamma); default 0.01, dpsgd takes none",
                                    check=positive, needs=PRIVATE, group=PRIVACY)
    dp_noise: Optional[float] = setting(None, "noise multiplier sigma: noise std sigma*C per update (give this or "
                                        "--dp-epsilon)", check=positive, needs=PRIVATE, group=PRIVACY)
    dp_epsilon: Optional[float] = setting(None, "privacy budget: the noise is chosen so that the planned steps "
                                          "spend at most this epsilon, and the run stops before exceeding it",
                                          check=positive, needs=PRIVATE, group=PRIVACY)
    dp_delta: float = setting(1e-5, "delta of the (epsilon, delta) guarantee; must be below 1/n", check=open_unit,
                              needs=PRIVATE, group=PRIVACY)
    accountant: str = setting("rdp", "rdp: Opacus's RDP analysis; pld: dp-accounting's privacy loss "
                              "distributions (tighter, slower); rdp-dpa: dp-accounting's RDP",
                              choices=ACCOUNTANTS, needs=PRIVATE, group=PRIVACY)
    dp_sampling: str = setting("poisson", "poisson: each sample joins a batch with probability q (what the "
                               "accountant assumes); shuffle: fixed-size shuffled batches (weaker: the "
                               "accounting is then a heuristic)", choices=["poisson", "shuffle"],
                               needs=PRIVATE, group=PRIVACY)
    dp_placement: str = setting("split", "central noise of sync: split (each rank adds N(0, (sigma C)^2/p)) or "
                                "one (rank 0 adds it all); the other algorithms noise every node",
                                choices=["split", "one"], needs=PRIVATE, group=PRIVACY)
    dp_virtual_batch: int = setting(256, "most samples per per-sample-gradient pass (bounds memory)",
                                    check=at_least(1), needs=PRIVATE, group=PRIVACY)
    dp_seed: Optional[int] = setting(None, "seed the DP noise and sampling (tests only: NOT private; warns, "
                                     "and is recorded)", needs=PRIVATE, group=PRIVACY)
    metrics: Optional[str] = setting(None, "append JSONL metrics to this file (rank 0)", group=OUTPUT)
    eval_every: int = setting(1, "evaluate every N epochs", check=at_least(1), group=OUTPUT)
    log_every: int = setting(0, "record a step event every N steps (0: off)", check=non_negative, group=OUTPUT)
    target_accuracy: Optional[float] = setting(None, "record the time to reach this accuracy", check=up_to_one,
                                               group=OUTPUT)
    target_rmse: Optional[float] = setting(None, "record the time to reach this test RMSE or lower (ratings: "
                                           "--model mf)", check=lambda v: None if v > 0 else "must be positive",
                                           group=OUTPUT, needs=(lambda c: c.model == "mf", "--model mf"))
    stop_at_target: bool = setting(False, "stop once --target-accuracy (or --target-rmse) is reached", group=OUTPUT,
                                   needs=(lambda c: c.target_accuracy is not None or c.target_rmse is not None,
                                          "--target-accuracy or --target-rmse"))
    quiet: bool = setting(False, "print nothing but errors", group=OUTPUT)
    progress: Optional[bool] = setting(None, "progress bar on rank 0 (default: when stderr is a terminal)",
                                       group=OUTPUT)
    checkpoint_dir: Optional[str] = setting(
        None, "write checkpoints into this directory (shared by every rank); SIGTERM or SIGUSR1 then make every "
        "rank finish its step, checkpoint and exit with status 75", group=CLUSTER)
    checkpoint_every: str = setting("", "checkpoint every N steps (200) or seconds (30s); synchronous family "
                                    "only (the asynchronous algorithms checkpoint when a signal stops them)",
                                    check=_parsed(parse_every), needs=CHECKPOINTS, group=CLUSTER)
    resume: bool = setting(False, "continue from the latest checkpoint in --checkpoint-dir (same world size, "
                           "algorithm and model)", needs=CHECKPOINTS, group=CLUSTER)
    data_options: dict = setting(None, "sizes of the synthetic datasets", factory=dict,
                                 group="data sizes (synthetic datasets)",
                                 keys={"samples": ("samples or ratings", 20000), "features": ("features", 64),
                                       "classes": ("classes", 10), "users": ("users", 300), "items": ("items", 400)})
    algorithm_options: dict = setting(None, "the algorithm's options (the CLI's flags come from the algorithms)",
                                      factory=dict)
    stall_timeout: Optional[float] = setting(
        None, "stall watchdog: a rank with no progress (no step done, no message handled) for this many seconds "
        "prints what it waits for, and the job ends with status 4; choose it above the longest evaluation",
        check=positive, group=DIAGNOSTICS)
    trace: Optional[str] = setting(None, "write each rank's timeline (Chrome trace JSON, open it in Perfetto) to "
                                   "PATH with .rankR before the suffix (t.json -> t.rank0.json ...)", group=DIAGNOSTICS)

    def validate(self) -> None:
        """Raise UsageError for values no run can use (the same on every rank): each field's checks.
        Then fill the defaults that depend on the algorithm (``momentum``, with ``--local-optimizer sgd``),
        so that the ``start`` record holds the values the run used."""
        for spec in fields(self):
            value, meta, flag = getattr(self, spec.name), spec.metadata, flag_of(spec.name)
            choices = choices_of(meta["choices"])
            if choices is not None and value not in choices:
                listed = ", ".join(map(str, choices[:-1])) + f" or {choices[-1]}"
                raise UsageError(f"{flag} must be {listed}, got {value}")
            complaint = meta["check"](value) if meta["check"] and value is not None else None
            if complaint:
                raise UsageError(f"{flag} {complaint}, got {value}")
            if meta["needs"] and value != spec.default:
                condition, needed = meta["needs"]
                if not condition(self):
                    raise UsageError(f"{flag} needs {needed}")
        from ..algorithm import ALGORITHMS

        if self.dp != "off":
            from .privacy import check_privacy

            check_privacy(self, ALGORITHMS.get(self.algorithm))
        if self.checkpoint_every and getattr(ALGORITHMS.get(self.algorithm), "asynchronous", False):
            raise UsageError(f"--checkpoint-every: {self.algorithm} is asynchronous (its ranks are never at the "
                             "same step); it checkpoints when SIGTERM or SIGUSR1 stops it (docs/cluster.md)")
        plain = getattr(ALGORITHMS.get(self.algorithm), "wraps_plain_sgd", False)
        if plain and (self.local_optimizer != "sgd" or self.resolved_momentum() != 0):
            raise UsageError(f"{self.algorithm} carries its own momentum around a plain SGD step: run it with "
                             "--momentum 0 (its default) and --local-optimizer sgd (its momentum is "
                             "--local-momentum)")
        if self.local_optimizer == "sgd":
            self.momentum = self.resolved_momentum()

    def resolved_momentum(self) -> float:
        """``momentum``, or where not given the algorithm's preferred local momentum
        (its ``local_momentum_default``; 0.9 where it has none)."""
        if self.momentum is not None:
            return self.momentum
        from ..algorithm import ALGORITHMS

        return getattr(ALGORITHMS.get(self.algorithm), "local_momentum_default", DEFAULT_MOMENTUM)

    def slow_rank_list(self) -> list:
        return rank_list(self.slow_ranks)

    def public(self) -> dict:
        """The settings as plain data (the ``start`` record's ``config``)."""
        return asdict(self)
