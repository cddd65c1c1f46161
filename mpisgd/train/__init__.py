"""Training harness: offline data, partitions, models, the shared loop, metrics.

``run``, ``MODELS`` and ``build_model`` (which need torch) load their module
on first use, so that the settings (:mod:`.config`) import without torch.
"""

import importlib

from .config import TrainConfig
from .data import DATASETS, load_dataset
from .partition import partition

_NEED_TORCH = {"run": "loop", "MODELS": "models", "build_model": "models"}

__all__ = ["DATASETS", "MODELS", "TrainConfig", "build_model", "load_dataset", "partition", "run"]


def __getattr__(name):
    if name not in _NEED_TORCH:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_NEED_TORCH[name]}", __name__), name)
