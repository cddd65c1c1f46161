"""Composition problems ``min_x F(G(x))`` for AsyVRSC and its sequential twins.

The interface is documented in :mod:`.base`; :func:`get_problem` builds one
from a spec string (``portfolio:pricing``, ``portfolio:crspday``,
``portfolio:synthetic:N=20,n=400,seed=0``, ``mdp:S=10,m=100,gamma=0.8,seed=0``).
:class:`TorchComposition` (in :mod:`.torchfn`, needs torch) wraps batched
torch callables into a problem.
"""

from .base import CompositionProblem
from .mdp import BellmanResidual
from .portfolio import Portfolio
from .spec import GRAMMAR, get_problem

__all__ = ["CompositionProblem", "BellmanResidual", "Portfolio", "GRAMMAR", "get_problem"]
