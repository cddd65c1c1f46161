"""One torch optimizer class per registered algorithm: ``SyncSGD(optimizer, *, comm=None, **options)``.

Each class fixes its algorithm, so it takes no algorithm argument; its
signature and docstring are generated from the algorithm's ``options``
(``inspect.signature(CoCoDSGD)`` lists ``period=4, overlap=True, weight=1.0``).
"""

import inspect

from .. import collective, gossip, masterworker  # noqa: F401  (registers the algorithms)
from ..algorithm import get_algorithm
from .optimizer import DistributedOptimizer

COMMON = {"comm": None, "names": None, "init": "broadcast"}  # keywords of every class, before the options


class AlgorithmOptimizer(DistributedOptimizer):
    """Base of the per-algorithm classes: the algorithm is ``algorithm_class``, not an argument."""

    algorithm_class = None

    def __init__(self, optimizer, *unexpected, comm=None, names=None, init="broadcast", **options):
        if unexpected:
            raise TypeError(f"{type(self).__name__} runs {self.algorithm_class.name!r} and takes no algorithm "
                            f"argument (got {unexpected[0]!r}); for another algorithm use "
                            "mpisgd.DistributedOptimizer(optimizer, name, ...)")
        super().__init__(optimizer, self.algorithm_class, comm=comm, names=names, init=init, **options)


def signature(algorithm_class) -> inspect.Signature:
    """``(optimizer, *, comm=None, names=None, init='broadcast', <option>=<default>, ...)``."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    defaults = {**COMMON, **{name: option.default for name, option in algorithm_class.options.items()}}
    return inspect.Signature([inspect.Parameter("optimizer", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
                             + [inspect.Parameter(name, keyword, default=value) for name, value in defaults.items()])


MASTER_WORKER = ("Master-worker: ranks 0 .. servers-1 serve instead of training: they call\n"
                 "``opt.algorithm.serve()`` (it returns when every worker has left or is lost), the\n"
                 "others train; then every rank calls ``opt.finish()``.\n\n")


def docstring(class_name: str, algorithm_class) -> str:
    options = "\n".join(f"    {name}={option.default!r}: {option.help}"
                        + (" [per rank]" if option.per_rank and "per rank" not in option.help else "")
                        for name, option in algorithm_class.options.items())
    return (f"{algorithm_class.summary or algorithm_class.name}, around a torch optimizer.\n\n"
            f"``{class_name}(optimizer, ...)`` is ``DistributedOptimizer(optimizer, {algorithm_class.name!r}, ...)``.\n"
            "comm: MPI communicator (default COMM_WORLD); names: parameter names (error messages);\n"
            "init: 'broadcast' rank 0's parameters (default), 'check' that all ranks start equal, or 'keep'.\n\n"
            f"Options (keyword-only, paper defaults):\n{options or '    (none)'}\n\n"
            + (MASTER_WORKER if "servers" in algorithm_class.options else "") +
            f"Maths: :class:`{algorithm_class.__module__}.{algorithm_class.__name__}`.")


def bind(class_name: str, algorithm: str) -> type:
    """The torch optimizer class of one registered algorithm."""
    algorithm_class = get_algorithm(algorithm)
    return type(class_name, (AlgorithmOptimizer,), {
        "algorithm_class": algorithm_class, "__signature__": signature(algorithm_class),
        "__doc__": docstring(class_name, algorithm_class), "__module__": "mpisgd.torch"})


SyncSGD = bind("SyncSGD", "sync")
LocalSGD = bind("LocalSGD", "local")
CoCoDSGD = bind("CoCoDSGD", "cocod")
FDA = bind("FDA", "fda")
EASGD = bind("EASGD", "easgd")
EAMSGD = bind("EAMSGD", "eamsgd")
LSGD = bind("LSGD", "lsgd")
GossipSGD = bind("GossipSGD", "gossip")
ElasticGossipSGD = bind("ElasticGossipSGD", "elastic-gossip")
SwiftSGD = bind("SwiftSGD", "swift")
DivShareSGD = bind("DivShareSGD", "divshare")
ADPSGD = bind("ADPSGD", "adpsgd")
EASGDAsync = bind("EASGDAsync", "easgd-async")
EAMSGDAsync = bind("EAMSGDAsync", "eamsgd-async")
EASGDDynamicWeighting = bind("EASGDDynamicWeighting", "easgd-dw")

CLASSES = {cls.__name__: cls for cls in AlgorithmOptimizer.__subclasses__()}  # class name -> class
