"""Training harness: offline data, partitions, models, the shared loop, metrics."""

from .config import TrainConfig
from .data import DATASETS, load_dataset
from .loop import run
from .models import MODELS, build_model
from .partition import partition

__all__ = ["DATASETS", "MODELS", "TrainConfig", "build_model", "load_dataset", "partition", "run"]
