"""The solvers ``mpisgd optimize`` can run: the registered composition algorithms and the sequential twins.

Every solver has one interface (see :mod:`mpisgd.optimize`). The sequential
twins of :mod:`mpisgd.masterworker.sequential` are wrapped here:

``csvrg``  compositional SVRG (:func:`~mpisgd.masterworker.sequential.compositional_svrg`), worker 0's
           sample stream: AsyVRSC-Distributed with one worker reproduces it bit for bit.
``scgd``   basic SCGD (:func:`~mpisgd.masterworker.sequential.scgd`) with ``alpha = eta``, ``epochs * m``
           steps, a record every ``m`` steps (one epoch).

The twins are sequential: they refuse a communicator of more than one rank
(:class:`~mpisgd.errors.UsageError`, on every rank alike) and run every epoch
(``stop_gap`` and ``time_limit`` are not checked); ``delays`` is empty.
"""

from ..algorithm import ALGORITHMS
from ..arrays import backend_for
from ..errors import UsageError
from ..masterworker.sequential import Schedule, compositional_svrg, scgd


class SequentialSolver:
    """A sequential twin behind the solvers' interface (one rank)."""

    name = ""
    composition = True
    accepts = ("eta", "inner_steps", "batch", "epochs", "seed")  # what a sequential twin does with the flags

    def __init__(self, x, problem, *, comm=None, eta=0.0, inner_steps=0, batch=0, epochs=30, seed=0,
                 stop_gap=0.0, time_limit=0.0, **ignored):
        size = comm.Get_size() if comm is not None else 1
        if size > 1:
            raise UsageError(f"{self.name} is sequential: run it on one rank (mpiexec -n 1), not {size}")
        if eta < 0 or inner_steps < 0 or batch < 0 or epochs < 0 or seed < 0:
            raise UsageError(f"{self.name} needs eta, inner_steps, batch, epochs and seed >= 0")
        if len(x) != problem.dim:
            raise UsageError(f"x has {len(x)} values but problem {problem.name} has dim {problem.dim}")
        self.x, self.problem, self.seed = x, problem, int(seed)
        self.schedule = Schedule.for_problem(problem, eta=eta or None, K=inner_steps or None, A=batch or None,
                                             epochs=epochs)
        self.delays, self.dropped, self.history = [], 0, []

    def run(self) -> list:
        backend = backend_for(self.x)
        start = backend.host_buffer(self.x)
        backend.to_host(self.x, start)
        result = self.solve(start.astype("float64"))
        backend.from_host(result.x.astype(start.dtype), self.x)
        self.history = result.history
        return self.history

    def solve(self, x0):
        raise NotImplementedError

    def close(self) -> None:
        pass


class CSVRG(SequentialSolver):
    """Compositional SVRG, sequential (ALGORITHMS.md §9.2)."""

    name = "csvrg"

    def solve(self, x0):
        return compositional_svrg(self.problem, self.schedule, seed=self.seed, x0=x0)


class SCGD(SequentialSolver):
    """Basic SCGD, sequential; an epoch is m steps."""

    name = "scgd"

    def solve(self, x0):
        m = self.problem.m
        return scgd(self.problem, alpha=self.schedule.eta, steps=self.schedule.epochs * m, record_every=m,
                    seed=self.seed, x0=x0)


SEQUENTIAL = {cls.name: cls for cls in (CSVRG, SCGD)}


def solvers() -> dict:
    """Name -> solver class: the registered composition algorithms, then the sequential twins."""
    found = {name: cls for name, cls in ALGORITHMS.items() if getattr(cls, "composition", False)}
    return {**dict(sorted(found.items())), **SEQUENTIAL}


def solver_names() -> list:
    return list(solvers())


def build(name: str, x, problem, comm, **values):
    """The solver ``name`` on ``x``, ``problem`` and ``comm`` with the options ``values`` (eta, inner_steps,
    batch, epochs, seed, stop_gap, time_limit, max_delay, timeout, atomic, ...); one the solver does not take
    is a UsageError (nothing the user asked for is silently dropped)."""
    known = accepted(name)
    unknown = sorted(set(values) - set(known))
    if unknown:
        flags = ", ".join("--" + ("target-gap with --stop-at-target" if k == "stop_gap" else k.replace("_", "-"))
                          for k in unknown)
        raise UsageError(f"{name} does not take {flags}")
    return get_solver(name)(x, problem, comm=comm, **values)


def accepted(name: str) -> tuple:
    """The option names solver ``name`` takes."""
    solver_class = get_solver(name)
    return tuple(getattr(solver_class, "options", None) or solver_class.accepts)


def get_solver(name: str):
    """The solver class called ``name``; UsageError naming the choices otherwise."""
    known = solvers()
    if name not in known:
        raise UsageError(f"unknown solver {name!r} for optimize; choose from {', '.join(known)}")
    return known[name]
