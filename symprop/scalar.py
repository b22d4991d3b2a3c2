"""Scalar mode, the textbook case: d(expression)/d(name) for each name, by SymPy's chain rule.

Undefined functions stay symbolic: for (a(w*x) - t)**2 and w, the result is
2·x·(a(w·x) − t)·a′(w·x), with a′ printed as SymPy's Subs(Derivative(a(ξ), ξ), ξ, w·x).
"""

from __future__ import annotations

import sympy as sp

from .declare.parse import parse
from .errors import SymPropError


def derive(expression: sp.Expr | str, wrt) -> dict[str, sp.Expr]:
    """{name: closed-form derivative} of `expression` with respect to each of `wrt`.

    `expression` is a SymPy expression or a string, parsed against an allow-list (never run
    as Python); `wrt` is a name or a symbol, or a list of them.
    """
    if isinstance(expression, str):
        expression = parse(expression, (), undefined_functions=True)
    else:
        expression = sp.sympify(expression, strict=True)
    names = [wrt] if isinstance(wrt, (str, sp.Symbol)) else list(wrt)
    if not names:
        raise SymPropError("give at least one name to differentiate with respect to")
    symbols = {s.name: s for s in expression.free_symbols if isinstance(s, sp.Symbol)}
    result = {}
    for name in names:
        key = name.name if isinstance(name, sp.Symbol) else str(name)
        if key not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            raise SymPropError(f"{key!r} does not appear in the expression (its symbols: {known})", "--wrt")
        result[key] = sp.factor_terms(sp.diff(expression, symbols[key]))
    return result
