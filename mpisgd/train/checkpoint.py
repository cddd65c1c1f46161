"""Checkpoints on disk: one file per rank, written atomically, the last complete checkpoint always kept.

Layout of ``--checkpoint-dir DIR`` (a directory every rank can reach: on a
cluster, a shared file system)::

    DIR/latest                   the name of the last complete checkpoint (one line of text)
    DIR/ckpt-000003/rank-0.pt    rank 0's state at the third checkpoint (torch.save)
    DIR/ckpt-000003/meta.json    what the run was (world size, algorithm, model, ...) and its step

Writing checkpoint ``name`` (:class:`CheckpointStore`): every rank writes its
file as ``rank-R.pt.tmp``, flushes and fsyncs it and renames it to
``rank-R.pt``; the ranks agree that all succeeded; then rank 0 writes
``meta.json`` the same way and replaces ``latest`` (temporary file, fsync,
rename, fsync of ``DIR``). Only then are older checkpoints removed. A crash
at any moment leaves ``latest`` naming a checkpoint whose every file is
complete; a partly written one is overwritten by the next attempt.

The files are pickles (``torch.load(weights_only=False)``): load only
checkpoints you wrote.
"""

import json
import os
import shutil

from ..errors import UsageError

LATEST = "latest"
PREFIX = "ckpt-"
IDENTITY = ("world_size", "algorithm", "model", "dataset", "hidden", "dtype")  # must match to resume


def parse_every(text: str):
    """``"200"`` -> (200 steps, None); ``"30s"`` -> (None, 30.0 seconds); ``""`` -> (None, None)."""
    text = (text or "").strip()
    try:
        if not text:
            return None, None
        if text.endswith("s"):
            seconds = float(text[:-1])
            if seconds > 0:
                return None, seconds
        elif int(text) > 0:
            return int(text), None
    except ValueError:
        pass
    raise UsageError(f"--checkpoint-every must be a number of steps (200) or of seconds (30s), got {text!r}")


def fsync_directory(path: str) -> None:
    """Make a rename inside ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: str, write) -> None:
    """``write(file)`` into ``path + ".tmp"``, fsync, rename over ``path``, fsync the directory."""
    temporary = path + ".tmp"
    with open(temporary, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


class CheckpointStore:
    """The checkpoints of one run in ``directory``, as seen by rank ``rank`` of ``size``."""

    def __init__(self, directory: str, rank: int, size: int):
        self.directory, self.rank, self.size = os.path.abspath(directory), rank, size

    @staticmethod
    def name(number: int) -> str:
        return f"{PREFIX}{number:06d}"

    @staticmethod
    def number(name: str) -> int:
        return int(name[len(PREFIX):])

    def path(self, name: str, rank: int = None) -> str:
        return os.path.join(self.directory, name, f"rank-{self.rank if rank is None else rank}.pt")

    def latest(self):
        """The name of the last complete checkpoint, or None."""
        try:
            with open(os.path.join(self.directory, LATEST), encoding="utf-8") as file:
                return file.read().strip() or None
        except FileNotFoundError:
            return None

    def write_rank(self, name: str, state: dict) -> None:
        """This rank's part of checkpoint ``name`` (atomic)."""
        import torch

        os.makedirs(os.path.join(self.directory, name), exist_ok=True)
        atomic_write(self.path(name), lambda file: torch.save(state, file))

    def commit(self, name: str, meta: dict) -> None:
        """Rank 0, once every rank's file is written: ``meta.json``, then ``latest``, then remove older ones."""
        text = json.dumps(meta, indent=1).encode()
        atomic_write(os.path.join(self.directory, name, "meta.json"), lambda file: file.write(text))
        atomic_write(os.path.join(self.directory, LATEST), lambda file: file.write(name.encode() + b"\n"))
        for entry in os.listdir(self.directory):
            if entry.startswith(PREFIX) and entry != name and os.path.isdir(os.path.join(self.directory, entry)):
                shutil.rmtree(os.path.join(self.directory, entry), ignore_errors=True)

    def meta(self, name: str) -> dict:
        with open(os.path.join(self.directory, name, "meta.json"), encoding="utf-8") as file:
            return json.load(file)

    def read_rank(self, name: str) -> dict:
        import torch

        return torch.load(self.path(name), map_location="cpu", weights_only=False)

    def check_matches(self, name: str, identity: dict) -> dict:
        """The checkpoint's meta; UsageError when it is from another world size, algorithm or model."""
        meta = self.meta(name)
        for key in IDENTITY:
            if meta.get(key) != identity.get(key):
                raise UsageError(f"--resume: checkpoint {os.path.join(self.directory, name)} is from a run with "
                                 f"{key.replace('_', ' ')} {meta.get(key)!r}, this run has {identity.get(key)!r}")
        return meta
