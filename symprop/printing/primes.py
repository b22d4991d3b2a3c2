"""Derivatives of undefined functions as books write them: a'(w*x), not Subs(Derivative(a(ξ), ξ), ξ, w*x)."""

from __future__ import annotations

import functools

import sympy as sp
from sympy.core.function import AppliedUndef


def prime_notation(expr: sp.Expr) -> sp.Expr:
    """SymPy's Subs(Derivative(a(ξ), ξ), ξ, w*x), written as a'(w*x)."""
    def prime(subs):
        derivative, (variable,), (point,) = subs.args
        if isinstance(derivative, sp.Derivative) and len(derivative.variables) == 1 and \
                isinstance(derivative.expr, AppliedUndef) and derivative.expr.args == (variable,):
            return _primed(derivative.expr.func.__name__)(point)
        return subs

    shown = expr.replace(lambda e: isinstance(e, sp.Subs), prime)
    return shown.replace(lambda e: isinstance(e, sp.Derivative) and len(e.variables) == 1
                         and isinstance(e.expr, AppliedUndef) and e.expr.args == e.variables,
                         lambda e: _primed(e.expr.func.__name__)(*e.variables))


@functools.cache
def _primed(name: str) -> type[sp.Function]:
    """The function a' for a, printed a'(u) in text and in LaTeX."""
    def latex(self, printer):
        return f"{printer._print(sp.Symbol(name))}'\\left({printer._print(self.args[0])}\\right)"

    return type(f"{name}'", (sp.Function,), {"_latex": latex, "nargs": 1})
