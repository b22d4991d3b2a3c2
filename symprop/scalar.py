"""Scalar mode, the textbook case: d(expression)/d(name) for each name, by SymPy's chain rule.

Undefined functions stay symbolic: for (a(w*x) - t)**2 and w, the result is
2·x·(a(w·x) − t)·a′(w·x). `chain_rule` also keeps the steps, as the seeds derive them:
y = a(w·x), dL/dy = 2(y − t), dy/dw = a′(w·x)·x, so dL/dw = 2(y − t)·a′(w·x)·x.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from .declare.parse import parse
from .errors import SymPropError
from .ops.registry import activations
from .printing.primes import prime_notation
from .simplify import TooLarge, derivative, tidy


def derive(expression: sp.Expr | str, wrt) -> dict[str, sp.Expr]:
    """{name: closed-form derivative} of `expression` with respect to each of `wrt`.

    `expression` is a SymPy expression or a string, parsed against an allow-list (never run
    as Python); `wrt` is a name or a symbol, or a list of them.
    """
    return chain_rule(expression, wrt).gradients


@dataclass
class ChainRule:
    """A scalar derivation, step by step."""

    expression: sp.Expr
    names: dict[sp.Symbol, sp.Expr]  # each undefined function's value, named: y = a(w*x)
    top: sp.Expr  # the expression in terms of those names: (y - t)**2
    adjoints: dict[sp.Symbol, sp.Expr]  # dL/dy for each name, in terms of the names
    gradients: dict[str, sp.Expr]  # dL/dw, closed form
    steps: dict[str, list[tuple[sp.Symbol, sp.Expr, sp.Expr]]]  # w -> [(y or None, dL/dy, dy/dw)]

    def to_latex(self, standalone: bool = True, source: str = "", command: str = "") -> str:
        from .render_latex import render_scalar

        return render_scalar(self, standalone, source, command)

    def _repr_latex_(self) -> str:
        return self.to_latex(standalone=False)


def chain_rule(expression: sp.Expr | str, wrt) -> ChainRule:
    if isinstance(expression, str):
        expression = parse(expression, (), undefined_functions=True)
    else:
        expression = sp.sympify(expression, strict=True)
    names_wanted = [wrt] if isinstance(wrt, (str, sp.Symbol)) else list(wrt)
    if not names_wanted:
        raise SymPropError("give at least one name to differentiate with respect to")
    symbols = {s.name: s for s in expression.free_symbols if isinstance(s, sp.Symbol)}
    variables = []
    for name in names_wanted:
        key = name.name if isinstance(name, sp.Symbol) else str(name)
        if key not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            raise SymPropError(f"{key!r} does not appear in the expression (its symbols: {known})", "--wrt")
        variables.append(symbols[key])

    names, top = _name_applications(expression)
    values = {definition: name for name, definition in names.items()}
    adjoints: dict[sp.Symbol, sp.Expr] = {}
    for name in reversed(names):  # outermost first: every user of a name comes before it
        adjoints[name] = sp.factor_terms(derivative(top, name) + sum(
            (adjoints[user] * derivative(definition, name) for user, definition in names.items()
             if user in adjoints and name in definition.free_symbols), sp.Integer(0)))
    gradients, steps = {}, {}
    for w in variables:
        route = [(None, sp.Integer(1), derivative(top, w))] + [
            (name, adjoints[name], derivative(definition, w).subs(values)) for name, definition in names.items()
            if w in definition.free_symbols]
        steps[w.name] = [(name, adjoint, local) for name, adjoint, local in route if local != 0]
        gradients[w.name] = _simplest(derivative(expression, w))
    return ChainRule(expression, names, top, adjoints, gradients, steps)


def _simplest(derivative: sp.Expr) -> sp.Expr:
    """The shortest of the forms symprop's simplifier finds, with common factors pulled out: the BCE of a σ
    gives x·(σ(wx) − t), not x·((1 − t)σ(wx) − t(1 − σ(wx)))."""
    try:
        shortest = tidy(derivative)
    except TooLarge:  # past the size budget: as SymPy gives it
        shortest = derivative
    return sp.factor_terms(shortest)


def _activation_functions() -> tuple:
    """The SymPy functions of activations (σ, ...), named as a book names them: y = σ(w·x)."""
    return tuple(op.sympy for op in activations().values() if op.sympy is not None)


def _name_applications(expression: sp.Expr):
    """Name each application of an undefined function or an activation, innermost first: y = a(w*x)."""
    taken = {s.name for s in expression.free_symbols}
    names: dict[sp.Symbol, sp.Expr] = {}
    rewritten: dict[sp.Expr, sp.Symbol] = {}

    def fresh():
        for candidate in ["y", "u", "v", "q"] + [f"y_{i}" for i in range(1, 1000)]:
            if candidate not in taken:
                taken.add(candidate)
                return sp.Symbol(candidate)
        raise SymPropError("too many functions in one expression")

    named = _activation_functions()

    def walk(e):
        if e.is_Atom:
            return e
        rebuilt = e.func(*(walk(a) for a in e.args))
        if isinstance(e, AppliedUndef) or isinstance(e, named):
            if rebuilt not in rewritten:
                rewritten[rebuilt] = symbol = fresh()
                names[symbol] = rebuilt
            return rewritten[rebuilt]
        return rebuilt

    return names, walk(expression)


__all__ = ["ChainRule", "chain_rule", "derive", "prime_notation"]
