"""A peer-to-peer message: a flat payload with a small header appended, in one buffer.

Every message of the :class:`~mpisgd.comm.Messenger` is one contiguous
host array of one dtype: the payload (a model or a fragment of one)
followed by ``header_size`` values (e.g. the sender's step and send time),
so it travels with a single buffer ``Isend``.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Message:
    source: int
    tag: int
    data: np.ndarray  # the payload (a view)
    header: np.ndarray  # the values sent along (e.g. the sender's step)


class Framing:
    """How payload and header share one buffer: ``dtype`` and ``header_size``."""

    def __init__(self, dtype=np.float64, header_size: int = 1):
        self.dtype, self.header_size = np.dtype(dtype), header_size

    def pack(self, payload, header=()) -> np.ndarray:
        """A message buffer: a host copy of ``payload`` with ``header`` appended."""
        data = np.empty(len(payload) + self.header_size, dtype=self.dtype)
        data[: len(payload)] = payload
        data[len(payload):] = np.resize(np.asarray(header, dtype=self.dtype), self.header_size)
        return data

    def empty(self, length: int) -> np.ndarray:
        """A receive buffer for a ``length``-long payload."""
        return np.empty(length + self.header_size, dtype=self.dtype)

    def unpack(self, source: int, tag: int, data: np.ndarray) -> Message:
        cut = len(data) - self.header_size
        return Message(source, tag, data[:cut], data[cut:])
