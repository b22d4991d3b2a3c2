"""Scalar functions that symprop adds to SymPy, each defined by a SymPy expression.

No derivative is written here. `fdiff` differentiates the definition with
`sympy.diff` and folds the result back onto named functions, so that
sigmoid'(u) comes out as sigmoid(u)·(1 − sigmoid(u)) and softplus'(u) as sigmoid(u).
"""

from __future__ import annotations

import functools

import sympy as sp


class DefinedFunction(sp.Function):
    """A function given by a SymPy expression of its arguments."""

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


class sigmoid(DefinedFunction):
    """The logistic function σ(u) = 1 / (1 + e^(−u))."""

    nargs = 1

    @staticmethod
    def definition(u):
        return 1 / (1 + sp.exp(-u))

    @classmethod
    def eval(cls, u):
        if u.is_zero:
            return sp.Rational(1, 2)
        if u.could_extract_minus_sign():  # σ(−u) = 1 − σ(u), from the definition
            return 1 - cls(-u)
        return None

    def _latex(self, printer, exp=None):
        power = f"^{{{exp}}}" if exp is not None else ""  # exp comes printed already
        return rf"\sigma{power}\left({printer._print(self.args[0])}\right)"


class softplus(DefinedFunction):
    """softplus(u) = log(1 + e^u), the stable form of −log σ(−u)."""

    nargs = 1

    @staticmethod
    def definition(u):
        return sp.log(1 + sp.exp(u))

    def _latex(self, printer, exp=None):
        power = f"^{{{exp}}}" if exp is not None else ""  # exp comes printed already
        return rf"\operatorname{{softplus}}{power}\left({printer._print(self.args[0])}\right)"


class xlogy(DefinedFunction):
    """xlogy(a, b) = a·log(b), taken as 0 where a = 0 (so 0·log 0 = 0)."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return a * sp.log(b)

    def _latex(self, printer, exp=None):
        a, b = (printer._print(arg) for arg in self.args)
        text = rf"{a} \log {b}"
        return rf"\left({text}\right)^{{{exp}}}" if exp is not None else text


NAMED_FUNCTIONS: tuple[type[DefinedFunction], ...] = (sigmoid, softplus, xlogy)


@functools.cache
def _derivatives(cls: type[DefinedFunction]):
    """∂f/∂(each argument), derived from the definition and folded back onto names."""
    dummies = tuple(sp.Dummy(f"u{i}") for i in range(min(cls.nargs)))
    definition = cls.definition(*dummies)
    return dummies, tuple(fold(sp.diff(definition, u), u) for u in dummies)


def fold(derivative: sp.Expr, u: sp.Symbol) -> sp.Expr:
    """Write `derivative`, an expression in u, through a named unary function of u if one fits."""
    unary = [f for f in NAMED_FUNCTIONS if f.nargs == sp.FiniteSet(1)]
    for f in unary:  # the derivative is itself a named function, as softplus' = sigmoid
        if sp.simplify(derivative - f.definition(u)) == 0:
            return f(u)
    for f in unary:  # or a polynomial in one, as sigmoid' = sigmoid(1 - sigmoid)
        y = sp.Dummy("y")
        for atom in sorted(derivative.atoms(sp.exp), key=sp.default_sort_key):
            solutions = sp.solve(sp.Eq(y, f.definition(u)), atom)
            if len(solutions) != 1:
                continue
            candidate = sp.factor(sp.simplify(derivative.xreplace({atom: solutions[0]})))
            if u not in candidate.free_symbols:
                return _flip_negated_factor(candidate).xreplace({y: f(u)})
    return derivative


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
