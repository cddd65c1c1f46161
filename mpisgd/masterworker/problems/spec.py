"""Problem specs: ``KIND[:SOURCE][:key=value,...]``, parsed by :func:`get_problem`.

- ``portfolio:pricing``, ``portfolio:crspday`` (real returns, optional ``:lam=0.5``);
- ``portfolio:synthetic:N=20,n=400,seed=0`` (any of the keys, and ``lam``);
- ``mdp`` or ``mdp:S=10,m=100,gamma=0.8,seed=0`` (policy evaluation, any of the keys).
"""

from ...errors import UsageError
from .mdp import BellmanResidual
from .portfolio import REAL_SETS, real, synthetic

GRAMMAR = ("problem spec is KIND[:SOURCE][:key=value,...], e.g. portfolio:pricing, portfolio:crspday, "
           "portfolio:synthetic:N=20,n=400,seed=0, mdp:S=10,m=100,gamma=0.8,seed=0")
#: (kind, source) -> (builder, {key: type}).
KINDS = {
    ("portfolio", "pricing"): (lambda **kw: real("pricing", **kw), {"lam": float}),
    ("portfolio", "crspday"): (lambda **kw: real("crspday", **kw), {"lam": float}),
    ("portfolio", "synthetic"): (synthetic, {"N": int, "n": int, "seed": int, "lam": float}),
    ("mdp", None): (BellmanResidual, {"S": int, "m": int, "gamma": float, "seed": int}),
}


def _options(text: str, spec: str, types: dict) -> dict:
    options = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"bad option {item!r} in problem spec {spec!r}; {GRAMMAR}")
        if key not in types:
            raise UsageError(f"unknown option {key!r} in problem spec {spec!r}; known: {', '.join(types) or 'none'}")
        if key in options:
            raise UsageError(f"option {key!r} given twice in problem spec {spec!r}")
        try:
            options[key] = types[key](value)
        except ValueError:
            raise UsageError(f"option {key}={value!r} in problem spec {spec!r} is not a valid {types[key].__name__}") from None
    return options


def get_problem(spec: str):
    """The composition problem a spec names (see the module docstring); UsageError if it names none."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty problem spec; {GRAMMAR}")
    parts = spec.strip().split(":")
    kind, rest = parts[0].lower(), parts[1:]
    source = rest.pop(0).lower() if rest and "=" not in rest[0] else None
    known = {k for k, _ in KINDS}
    if kind not in known:
        raise UsageError(f"unknown problem kind {kind!r} in {spec!r}; known: {', '.join(sorted(known))}")
    if (kind, source) not in KINDS:
        sources = [s for k, s in KINDS if k == kind and s]
        hint = f"choose one of {', '.join(sources)}" if sources else "it takes no source"
        raise UsageError(f"problem {kind!r} has no source {source!r} in {spec!r}; {hint}")
    if len(rest) > 1:
        raise UsageError(f"too many ':' parts in problem spec {spec!r}; {GRAMMAR}")
    builder, types = KINDS[kind, source]
    return builder(**(_options(rest[0], spec, types) if rest else {}))
