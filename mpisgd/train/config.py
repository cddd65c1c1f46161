"""Everything a training run needs, as one dataclass (the CLI fills it from its flags)."""

from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError
from .partition import parse_partition


@dataclass
class TrainConfig:
    algorithm: str = "sync"
    model: str = "mlp"
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 32  # per rank
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False  # Nesterov momentum (EAMSGD with --algorithm easgd)
    seed: int = 0
    partition: str = "iid"
    metrics: Optional[str] = None
    eval_every: int = 1
    log_every: int = 0
    target_accuracy: Optional[float] = None
    stop_at_target: bool = False
    quiet: bool = False
    progress: Optional[bool] = None  # None: a bar when stderr is a terminal
    hidden: int = 64
    dtype: str = "float32"
    device: str = "auto"
    threads: int = 1
    time_budget: Optional[float] = None  # seconds of training (checked every step by asynchronous algorithms)
    slow_ranks: str = ""  # "R[,R...]": straggler ranks
    slow_factor: float = 1.0  # their local steps take this many times longer
    slow_link_mbps: Optional[float] = None  # their uplink, Mbit/s (asynchronous algorithms)
    data_options: dict = field(default_factory=dict)  # samples, features, classes, users, items
    algorithm_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise UsageError for values no run can use (the same on every rank)."""
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must not be negative, got {self.weight_decay}"),
            (not self.nesterov or self.momentum > 0, "--nesterov needs --momentum > 0"),
            (self.eval_every >= 1, f"--eval-every must be at least 1, got {self.eval_every}"),
            (self.log_every >= 0, f"--log-every must not be negative, got {self.log_every}"),
            (self.hidden >= 1, f"--hidden must be at least 1, got {self.hidden}"),
            (self.threads >= 1, f"--threads must be at least 1, got {self.threads}"),
            (self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}"),
            (self.device in ("auto", "cpu", "cuda"), f"--device must be auto, cpu or cuda, got {self.device}"),
            (self.target_accuracy is None or 0 < self.target_accuracy <= 1,
             f"--target-accuracy must be in (0, 1], got {self.target_accuracy}"),
            (not self.stop_at_target or self.target_accuracy is not None,
             "--stop-at-target needs --target-accuracy"),
            (self.time_budget is None or self.time_budget > 0, f"--time-budget must be positive, got {self.time_budget}"),
            (self.slow_factor >= 1, f"--slow-factor must be at least 1, got {self.slow_factor}"),
            (self.slow_link_mbps is None or self.slow_link_mbps > 0,
             f"--slow-link-mbps must be positive, got {self.slow_link_mbps}"),
            ((self.slow_factor == 1 and self.slow_link_mbps is None) or self.slow_ranks,
             "--slow-factor and --slow-link-mbps need --slow-ranks"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        parse_partition(self.partition)
        self.slow_rank_list()

    def slow_rank_list(self) -> list:
        try:
            return sorted({int(r) for r in self.slow_ranks.split(",") if r.strip()})
        except ValueError:
            raise UsageError(f"--slow-ranks must be rank numbers separated by commas, got {self.slow_ranks!r}") from None
