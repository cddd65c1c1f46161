"""``python -m mpisgd optimize``: composition solvers on composition problems, with JSONL metrics.

A *solver* (:mod:`.solvers`) is constructed as ``Solver(x, problem, comm=..., eta=..., inner_steps=...,
batch=..., epochs=..., seed=..., stop_gap=..., time_limit=...)`` and ``run()`` returns its history, a list
of :class:`~mpisgd.masterworker.sequential.Record` (epoch, step, gap f - f*, time_s; epoch 0 first); it
leaves the final iterate in ``x``. The asynchronous solvers are registered algorithms marked
``composition = True`` (``asyvrsc-distributed``, ``asyvrsc-shared``); the sequential twins ``csvrg`` and
``scgd`` run on one rank. :mod:`.command` is the command line, :mod:`.records` its metrics.
"""

from .solvers import get_solver, solver_names

__all__ = ["get_solver", "solver_names"]
