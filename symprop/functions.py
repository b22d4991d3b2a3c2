"""Scalar functions that symprop adds to SymPy (each in its op's module, σ in its own), each defined by a SymPy
expression.

No derivative is written here. `fdiff` differentiates the definition with `sympy.diff` and folds the result back onto
named functions, so that σ'(u) comes out as σ(u)·(1 − σ(u)), and the derivative of log(1 + e^u) as σ(u).
"""

from __future__ import annotations

import functools

import sympy as sp

DEFINED: list[type] = []  # every DefinedFunction, in the order they are made


class DefinedFunction(sp.Function):
    """A function given by a SymPy expression of its arguments."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        DEFINED.append(cls)

    @staticmethod
    def definition(*args: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    def fdiff(self, argindex=1):
        dummies, derivatives = _derivatives(type(self))
        return derivatives[argindex - 1].xreplace(dict(zip(dummies, self.args, strict=True)))

    def _eval_rewrite_as_exp(self, *args, **kwargs):
        return self.definition(*args)

    def _eval_evalf(self, prec):
        return self.definition(*self.args).evalf(prec)

    def _eval_rewrite_as_log(self, *args, **kwargs):
        return self.definition(*args)


@functools.cache
def _derivatives(cls: type[DefinedFunction]):
    """∂f/∂(each argument), derived from the definition and folded back onto names."""
    dummies = tuple(sp.Dummy(f"u{i}", real=True) for i in range(min(cls.nargs)))
    definition = cls.definition(*dummies)
    return dummies, tuple(fold(sp.diff(definition, u), u) for u in dummies)


def fold(derivative: sp.Expr, u: sp.Symbol) -> sp.Expr:
    """Write `derivative`, an expression in u, through a named unary function of u if one fits."""
    unary = [f for f in DEFINED if f.nargs == sp.FiniteSet(1)]
    for f in unary:  # the derivative is itself a named function, as log(1 + e^u)' = σ(u)
        if sp.simplify(derivative - f.definition(u)) == 0:
            return f(u)
    candidates = []  # or a polynomial in one, as σ' = σ(1 - σ): the simplest such form
    for f in unary:
        y = sp.Dummy("y")
        for atom in sorted(derivative.atoms(sp.exp), key=sp.default_sort_key):
            solutions = sp.solve(sp.Eq(y, f.definition(u)), atom)
            if len(solutions) != 1:
                continue
            candidate = sp.factor(sp.simplify(derivative.xreplace({atom: solutions[0]})))
            if u not in candidate.free_symbols:
                candidates.append(_flip_negated_factor(candidate).xreplace({y: f(u)}))
    return min(candidates, key=sp.count_ops) if candidates else derivative


def _flip_negated_factor(expr: sp.Expr) -> sp.Expr:
    """−(y − 1)·y  →  y·(1 − y): the sign folded into a difference, as books print it."""
    if not (expr.is_Mul and expr.could_extract_minus_sign()):
        return expr
    factors = list((-expr).args) if (-expr).is_Mul else [-expr]
    for i, factor in enumerate(factors):
        if factor.is_Add:
            factors[i] = -factor
            return sp.Mul(*factors)
    return expr
