"""Metrics as JSON lines, written by rank 0; plots and tables are made from these files."""

import json
import os
import time


class MetricsWriter:
    """Append one JSON object per line to ``path`` (rank 0 only; other ranks write nothing).

    Every record carries ``event``, ``algorithm``, ``rank``, ``world_size`` and
    ``time`` plus what the caller passes (``step``, ``epoch``, ``wall_s``,
    ``loss``, ``accuracy``, ``bytes_sent``, ``comm_wait_s``, ...).
    """

    def __init__(self, path, *, rank: int, world_size: int, algorithm: str):
        self.base = {"algorithm": algorithm, "rank": rank, "world_size": world_size}
        self.file = None
        if path and rank == 0:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")

    def record(self, event: str, **fields) -> dict:
        record = {"event": event, **self.base, "time": time.time(), **fields}
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        return record

    def length(self):
        """The file's length in bytes now (rank 0; None elsewhere): a checkpoint's place in it."""
        return self.file.tell() if self.file is not None else None

    def cut(self, length) -> None:
        """Drop what was written after ``length`` bytes (a resumed run writes those records again)."""
        if self.file is not None and length is not None:
            self.file.truncate(length)
            self.file.seek(length)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
