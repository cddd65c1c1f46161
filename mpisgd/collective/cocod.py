"""CoCoD-SGD: computation and communication decoupled (Shen et al., IJCAI 2019).

Update (ALGORITHMS.md §2.1, from the Overlap-Local-SGD reference code, not
the paper's algorithm box): at the start of each round every rank takes a
snapshot ``s_i`` of its model and starts averaging the snapshots with a
non-blocking ``Iallreduce`` on a persistent buffer ``c``; it then takes
``period`` (k) local steps while the all-reduce runs, calling ``Test()``
every step (and from backward hooks) so MPI progresses it. At the end of
the round it waits and merges:

    x_i <- c + (x_i - s_i)        c = mean_j s_j  (k steps old)

then takes the next snapshot and starts the next all-reduce. The merge
keeps the sum of the models; communication is hidden when one all-reduce
takes less than k local steps. Memory: three model-sized buffers.

``overlap=False`` replaces the round end by a blocking average of the
current models: Local SGD with period k.

Heterogeneous workers [reconstructed, not read in the paper]: a rank's
``weight`` (e.g. its batch size, per rank) turns the average into
``sum_i w_i s_i / sum_j w_j`` (the weighted mean of ``Communicator.iallreduce``).

``finish()`` completes the round in flight (wait, merge) and averages the
models once, so every rank ends with the same model; nothing is left in
flight (training may continue afterwards with a new round).
"""

import numpy as np

from ..algorithm import Algorithm, Option, positive, register


@register
class CoCoD(Algorithm):
    name = "cocod"
    summary = "CoCoD-SGD: snapshot average (Iallreduce) overlapped with period local steps"
    options = {
        "period": Option(4, "local steps between model averages (tau)", positive),
        "overlap": Option(True, "overlap the average with the next period's local steps (off: Local SGD)"),
        "weight": Option(1.0, "this rank's weight in the average, e.g. its batch size "
                              "(per rank; reconstructed heterogeneous option)", positive, per_rank=True),
    }
    state_buffers = ("snapshot", "buffer")  # buffer: the snapshot average (completed first)

    def __init__(self, flat, *, comm=None, **options):
        super().__init__(flat, comm=comm, **options)
        weights = self.comm.allgather(np.array([self.weight], dtype=np.float64))[:, 0]
        # equal weights: the plain mean (no weight reduction, and exact where p x / p is)
        self.averaging_weight = None if np.all(weights == weights[0]) else self.weight
        backend = self.flat.backend
        self.snapshot = backend.copy(self.flat.params)
        self.buffer = backend.zeros_like(self.flat.params)
        self.averaging = False  # a round's average started and not merged yet
        if self.overlap:
            self._start_average()

    def _start_average(self) -> None:
        self.buffer[...] = self.snapshot
        self.in_flight.add(self.comm.iallreduce(self.buffer, average=True, weight=self.averaging_weight))
        self.averaging = True

    def _average_now(self) -> None:
        self.comm.allreduce(self.flat.params, average=True, weight=self.averaging_weight)

    def _merge(self) -> None:
        """x <- c + (x - s), computed as x += (c - s) so that c == s leaves x exactly unchanged."""
        self.wait_in_flight()
        self.averaging = False
        self.buffer -= self.snapshot
        self.flat.params += self.buffer
        self.snapshot[...] = self.flat.params

    def after_step(self) -> None:
        super().after_step()
        if self.overlap and not self.averaging:  # the first step after finish(): a new round
            self._start_average()
        if self.steps % self.period:
            self.progress()
        elif self.overlap:
            self._merge()
            self._start_average()
        else:
            self._average_now()

    def finish(self) -> None:
        if self.averaging:
            self._merge()
        self._average_now()
        self.snapshot[...] = self.flat.params  # nothing stays in flight after finish()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pending": self.averaging}  # the base completes what is in flight

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.averaging = state["pending"]  # its average is complete, in the restored buffer
