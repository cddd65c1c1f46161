"""The contract every mpisgd algorithm follows, its options and the registry.

An algorithm works on a :class:`~mpisgd.flat.FlatParams` (one flat
parameter vector and its gradient, numpy, torch or cupy) and a
:class:`~mpisgd.comm.Communicator`. The local optimizer step is *not* part
of it: the caller (a torch optimizer through :class:`mpisgd.DistributedOptimizer`,
or the user's own numpy code) updates the parameters, and the algorithm acts
around that step:

====================  =========================================================
``grad_ready(i)``     parameter ``i``'s gradient is complete (backward hooks)
``before_step()``     gradients are complete; the local step comes next
``after_step()``      the local step has updated the parameters
``finish()``          training is over: complete in-flight communication
====================  =========================================================

Requests in flight live in one place, ``in_flight`` (an
:class:`~mpisgd.comm.request.InFlight`): an algorithm ``add()``s the
requests it starts; the default ``progress()`` (also called from
``grad_ready``) ``Test()``s them, ``wait_in_flight()`` completes them, and
``finish()``, ``state_dict()`` and ``load_state_dict()`` complete them first.

Every algorithm has keyword-only options with the paper defaults, declared
in ``options`` (the CLI builds its flags from them), a ``state_dict()`` with
its counters and buffers, and per-rank statistics.
"""

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

from .comm import Communicator
from .comm.request import InFlight
from .errors import AgreementError, UsageError
from .flat import FlatParams

INIT_MODES = ("broadcast", "check", "keep")  # what construction does with the ranks' initial parameters


@dataclass(frozen=True)
class Option:
    """One keyword option of an algorithm: default, help text and a check."""

    default: Any
    help: str
    check: Optional[Callable[[Any], Optional[str]]] = None
    per_rank: bool = False  # may differ between ranks (left out of the start-up agreement)

    @property
    def type(self):
        return type(self.default)

    def validate(self, name: str, value):
        kind = self.type
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise UsageError(f"option {name} must be a {kind.__name__}, got {value!r}")
        value = kind(value)
        problem = self.check(value) if self.check else None
        if problem:
            raise UsageError(f"option {name} {problem}, got {value!r}")
        return value


def positive(value):
    return None if value > 0 else "must be positive"


def non_negative(value):
    return None if value >= 0 else "must not be negative"


def fraction(value):
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def one_of(*choices):
    def check(value):
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


class Algorithm:
    """Base class: options, communicator, start-up agreement, counters."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[dict] = {}
    asynchronous: ClassVar[bool] = False  # ranks may take different numbers of steps (no collectives)
    averages_gradients: ClassVar[bool] = False  # every rank steps with the mean gradient (sync)
    state_buffers: ClassVar[tuple] = ()  # model-sized arrays saved (copied) by state_dict()
    state_fields: ClassVar[tuple] = ()  # small values (counters) saved by state_dict()

    def __init__(self, flat, *, comm=None, init="broadcast", **options):
        """``init``: ``"broadcast"`` rank 0's parameters to every rank (the DDP convention),
        ``"check"`` that the ranks start equal (:class:`AgreementError` otherwise) or
        ``"keep"`` each rank's own start (decentralized experiments)."""
        self.flat = flat if isinstance(flat, FlatParams) else FlatParams(flat)
        self._owns_comm = not isinstance(comm, Communicator)
        self.comm = Communicator(comm) if self._owns_comm else comm
        try:
            if not isinstance(init, str) or init not in INIT_MODES:
                raise UsageError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
            self.config = self.resolve_options(options)
            problem = ""
        except UsageError as error:
            self.config, problem = {}, str(error)
        self.comm.check_all(not problem, problem, UsageError)
        for key, value in self.config.items():
            setattr(self, key, value)
        self.steps = 0
        self.in_flight = InFlight()  # the requests started and not yet waited for
        shared = {k: v for k, v in self.config.items() if not self.options[k].per_rank}
        self.comm.check_agreement(
            {"algorithm": self.name, "options": shared, "params": self.flat.describe(), "init": init},
            what="model and algorithm",
        )
        self._start_from(init)

    def _start_from(self, init: str) -> None:
        """Broadcast or check the initial parameters; set-up traffic is not counted in the statistics."""
        counted = self.comm.stats.as_dict()
        try:
            if init == "broadcast":
                self.comm.bcast(self.flat.params, root=0)
            elif init == "check":
                digests = self.comm.allgather_object(params_digest(self.flat))
                differ = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
                if differ:
                    raise AgreementError(
                        f"ranks start from different parameter values: rank(s) {differ} differ from rank 0; "
                        "seed every rank's model alike, or pass init='broadcast' (rank 0's values) or init='keep'")
        finally:
            self.comm.stats.load(counted)

    @classmethod
    def resolve_options(cls, given: dict) -> dict:
        unknown = sorted(set(given) - set(cls.options))
        if unknown:
            raise UsageError(f"algorithm {cls.name!r} has no option {unknown[0]!r}; it takes {sorted(cls.options)}")
        return {
            name: option.validate(name, given[name]) if name in given else option.default
            for name, option in cls.options.items()
        }

    # -- the hooks around the local step (defaults do nothing) -------------
    def grad_ready(self, index: int) -> None:
        """Gradient of parameter ``index`` (a FlatParams slot) is complete."""
        self.progress()

    def progress(self) -> None:
        """Let in-flight communication advance (``Test()`` the requests in ``in_flight``); cheap,
        call it during local work."""
        self.in_flight.test()

    def wait_in_flight(self) -> None:
        """Block until every request in ``in_flight`` is complete (its completion work done); forget them."""
        self.in_flight.wait()

    def report_loss(self, loss: float) -> None:
        """This rank's training loss of the step just taken (used by leader-based algorithms)."""

    def backward_done(self) -> None:
        """Every gradient of the backward pass is complete (the torch binding calls it at the end of
        ``backward()``, only where a subclass overrides it: algorithms that reduce gradients finish
        here, so that ``.grad`` holds the global mean after ``backward()``, as with DDP)."""

    def before_step(self) -> None:
        """Gradients are complete; the local optimizer step comes next."""

    def after_step(self) -> None:
        """The local optimizer step has run."""
        self.steps += 1

    def finish(self) -> None:
        """Complete in-flight communication at the end of training."""
        self.wait_in_flight()

    def close(self) -> None:
        """Free the private communicator (when this algorithm created it)."""
        if self._owns_comm:
            self.comm.free()

    # -- state and statistics ---------------------------------------------
    def state_dict(self) -> dict:
        """Options, counters, statistics and copies of the buffers named in ``state_buffers``.

        What is in flight is completed first: a state never holds a half-reduced buffer.
        """
        self.wait_in_flight()
        state = {"algorithm": self.name, "options": dict(self.config), "steps": self.steps,
                 "comm_stats": self.comm.stats.as_dict()}
        state.update({name: self.flat.backend.copy(getattr(self, name)) for name in self.state_buffers})
        state.update({name: copy.deepcopy(getattr(self, name)) for name in self.state_fields})
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("algorithm") != self.name:
            raise ValueError(f"state is for algorithm {state.get('algorithm')!r}, not {self.name!r}")
        self.wait_in_flight()  # MPI must be done writing the buffers about to be overwritten
        self.steps = state["steps"]
        self.comm.stats.load(state.get("comm_stats", {}))
        for name in self.state_buffers:
            getattr(self, name)[...] = state[name]
        for name in self.state_fields:
            setattr(self, name, copy.deepcopy(state[name]))

    def statistics(self) -> dict:
        return {"steps": self.steps, **self.comm.stats.as_dict()}


def params_digest(flat) -> str:
    """SHA-256 of the parameter vector's bytes (copied to the host)."""
    host = flat.backend.host_buffer(flat.params)
    flat.backend.to_host(flat.params, host)
    return hashlib.sha256(host.tobytes()).hexdigest()


ALGORITHMS: dict = {}


def register(cls):
    """Class decorator: make an algorithm available by name (CLI, DistributedOptimizer)."""
    if not cls.name or cls.name in ALGORITHMS:
        raise ValueError(f"algorithm name {cls.name!r} is empty or taken")
    ALGORITHMS[cls.name] = cls
    return cls


def get_algorithm(name: str):
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UsageError(f"unknown algorithm {name!r}; choose from {', '.join(sorted(ALGORITHMS))}") from None
