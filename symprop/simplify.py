"""Simplification: tidy fused expressions, rewrite them into stable forms, factor reductions.

Three rules, none of them a derivative:
- `tidy` picks the shortest of a few equivalent forms (as written, expanded, factored),
  which is how σ(z) − t falls out of sigmoid with BCE;
- stable rewrites replace log σ(u) by −softplus(−u) and log(1 − σ(u)) by −softplus(u);
- `reduce_sum` pulls factors that are constant along the summed axes out of the sum and
  reuses an existing sum of the rest, which is how the max of a log-sum-exp drops out.
"""

from __future__ import annotations

import math
from collections import Counter

import sympy as sp

from .errors import SymPropError
from .functions import sigmoid, softplus
from .graph import Graph, Value
from .shapes import dims_at, size

_EXPAND_TERMS = 64  # expanding is tried only while it makes at most this many terms: (a+b)**30 would not end
EXPRESSION_BUDGET = 4000  # operations in one fused expression; past it a derivation stops


class TooLarge(SymPropError):
    """A derivation past its size budget: it would take minutes, or never end."""


def tidy(expr: sp.Expr) -> sp.Expr:
    ops = sp.count_ops(expr)
    if ops > EXPRESSION_BUDGET:
        raise TooLarge(f"a derived expression has {ops} operations, past the budget of {EXPRESSION_BUDGET}; "
                       "write the custom expression more simply, or split it over several layers")
    expr = kinks(stable(expr))
    if expr.has(sp.Piecewise):  # one Piecewise on the outside, each branch tidied on its own
        folded = sp.piecewise_fold(expr)
        if isinstance(folded, sp.Piecewise):
            return sp.Piecewise(*((tidy(value), condition) for value, condition in folded.args))
    candidates = [expr]
    if _terms_when_expanded(expr) <= _EXPAND_TERMS:
        expanded = sp.expand(expr, power_exp=False, power_base=False, log=False)
        candidates += [expanded, sp.factor_terms(expanded)]
    ops = [sp.count_ops(c) for c in candidates]
    fewest = [c for c, n in zip(candidates, ops, strict=True) if n == min(ops)]
    return fewest[0] if len(fewest) == 1 else min(fewest, key=lambda e: len(str(e)))


def _terms_when_expanded(expr: sp.Expr) -> float:
    """An upper bound on the number of terms `expand` makes (without running it)."""
    if expr.is_Add:
        return sum(_terms_when_expanded(a) for a in expr.args)
    if expr.is_Mul:
        product = 1.0
        for factor in expr.args:
            product *= _terms_when_expanded(factor)
        return product
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 1:
        base = _terms_when_expanded(expr.base)
        return float(math.comb(int(expr.exp) + int(min(base, 1e6)) - 1, int(min(base, 1e6)) - 1)) \
            if base > 1 and expr.exp < 10_000 else (1.0 if base <= 1 else math.inf)
    return 1.0


def stable(expr: sp.Expr) -> sp.Expr:
    """log σ(u) = −softplus(−u) and log(1 − σ(u)) = −softplus(u): finite for every u."""

    def rewrite(log_of):
        arg = log_of.args[0]
        if isinstance(arg, sigmoid):
            return -softplus(-arg.args[0])
        rest = arg - 1
        if isinstance(-rest, sigmoid):
            return -softplus((-rest).args[0])
        return log_of

    return expr.replace(lambda e: isinstance(e, sp.log), rewrite)


def kinks(expr: sp.Expr) -> sp.Expr:
    """Where a derivative jumps, take torch's one-sided value: relu'(0) = 0, so H(0) = 0."""
    return expr.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1] == sp.S.Half,
                        lambda e: sp.Heaviside(e.args[0], 0))


def reduce_sum(graph: Graph, value: Value, out_shape: tuple, stem: str = "s") -> Value:
    """Σ of `value` over the axes that `out_shape` drops (leading) or keeps as 1.

    `out_shape` aligns with value.shape on the right, as in NumPy broadcasting.
    """
    ndim = len(value.shape)
    dropped = set(range(ndim - len(out_shape)))
    kept = {a for a in range(ndim) if a not in dropped and out_shape[a - len(dropped)] == 1 and value.shape[a] != 1}
    reduced = dropped | kept
    if not reduced:
        return Value(value.expr, out_shape)

    def constant_along(expr) -> bool:
        shape = graph.shape_of(expr)
        return len(shape) <= len(out_shape) and all(dims_at(shape, a, ndim) in (None, 1) for a in reduced)

    def sum_of(term: sp.Expr, dry_run: bool = False):
        """Σ term; None if dry_run and it would need a new sum tensor.

        Factors constant along the summed axes go outside, so that equal sums are found
        equal. A sum over leading axes only (a bias gradient) keeps them inside, so that
        it stays Σ_n dz, the column sum of a named cotangent.
        """
        # A dry run sees the terms of an expanded sum: products already, with nothing to factor.
        factors = sp.Mul.make_args(term if dry_run else sp.factor_terms(term))
        if not dry_run and not kept and not constant_along(term):
            factors = (term,)
        outside = [f for f in factors if constant_along(f)]
        inside = sp.Mul(*(f for f in factors if not constant_along(f)))
        inside_shape = graph.shape_of(inside)
        present = {a for a in reduced if dims_at(inside_shape, a, ndim) not in (None, 1)}
        count = size([value.shape[a] for a in reduced - present])  # Σ over an axis the term lacks
        if not present:
            return sp.Mul(count, *outside, inside)
        offset = ndim - len(inside_shape)
        axes = tuple(sorted({a - offset for a in present} | {a - offset for a in dropped if a >= offset}))
        summed = _sum_to_one(graph, inside, axes)
        if summed is None:
            result_shape = tuple(1 if a + offset in kept else d
                                 for a, d in enumerate(inside_shape) if a + offset not in dropped)
            attrs = dict(operands=(Value(inside, inside_shape),), axes=axes)
            if dry_run and not graph.has(result_shape, "sum", **attrs):
                return None
            summed = graph.interned(stem, result_shape, "sum", **attrs).expr
        return sp.Mul(count, *outside, summed)

    # Σ(a + b) = Σa + Σb when every part is known (a count, Σ_k t_k = 1, or a sum already made):
    # this is how ∂L/∂max of a log-sum-exp cancels to 0. Otherwise one sum of the whole.
    if _terms_when_expanded(value.expr) > _EXPAND_TERMS:
        return Value(sum_of(value.expr), out_shape)
    terms = sp.Add.make_args(sp.expand(value.expr, power_exp=False, power_base=False, log=False))
    parts = [sum_of(term, dry_run=True) for term in terms]
    if all(part is not None for part in parts):
        return Value(tidy(sp.Add(*parts)), out_shape)
    known = [part for part in parts if part is not None]
    if any(part == 0 for part in known):  # a part that sums to 0 drops out; the rest is one new sum
        rest = sp.Add(*(term for term, part in zip(terms, parts, strict=True) if part is None))
        return Value(tidy(sp.Add(*known, sum_of(tidy(rest)))), out_shape)
    return Value(sum_of(value.expr), out_shape)


def _sum_to_one(graph: Graph, expr: sp.Expr, axes: tuple[int, ...]):
    """Σ of a tensor known to sum to 1 (or to 0) along the axes; None if not known."""
    tensor = graph.tensors.get(expr)
    if tensor is not None and tensor.simplex_axis is not None and axes == (tensor.simplex_axis,):
        graph.note("sums to one", tensor.name)
        return sp.Integer(1)
    if tensor is not None and tensor.zero_sum_axis is not None and axes == (tensor.zero_sum_axis,):
        graph.note("sums to zero", tensor.name)
        return sp.Integer(0)
    return None


def reduce_max(graph: Graph, value: Value, axis: int, stem: str = "m") -> Value:
    """max over one axis, kept as size 1."""
    shape = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    return graph.interned(stem, shape, "max", operands=(value,), axes=(axis,))


def replace_structurally(expr: sp.Expr, definition: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """`definition` → `symbol` wherever it stands, also as part of a sum or product: b2 + mm2 - t → z2 - t.

    Structural, not algebraic (SymPy's subs once turned exp(x) into sqrt(h) for h = exp(x/2)).
    """
    if expr.is_Atom:
        return symbol if expr == definition else expr
    if expr == definition:
        return symbol
    if expr.is_Pow and definition.is_Pow and expr.base == definition.base and definition.exp.is_Rational:
        ratio = expr.exp / definition.exp  # r = v^(-1/2) names v^(-3/2) too: it is r^3
        if ratio.is_Integer and 1 < ratio <= 4:
            return symbol ** ratio
    rebuilt = expr.func(*(replace_structurally(a, definition, symbol) for a in expr.args)) if expr.args else expr
    if (definition.is_Add or definition.is_Mul) and rebuilt.func is definition.func:
        for sign in ((1, -1) if definition.is_Add else (1,)):
            wanted = Counter(sp.Add.make_args(-definition) if sign == -1 else definition.args)
            have = Counter(rebuilt.args)
            if all(have[a] >= n for a, n in wanted.items()):
                return rebuilt.func(sign * symbol, *(have - wanted).elements())
    return rebuilt
