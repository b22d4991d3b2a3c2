"""Simplification: tidy fused expressions, rewrite them into stable forms, factor reductions.

Three rules, none of them a derivative:
- `tidy` picks the shortest of a few equivalent forms (as written, expanded, factored),
  which is how σ(z) − t falls out of sigmoid with BCE;
- stable rewrites replace log σ(u) by −softplus(−u) and log(1 − σ(u)) by −softplus(u);
- `reduce_sum` pulls factors that are constant along the summed axes out of the sum and
  reuses an existing sum of the rest, which is how the max of a log-sum-exp drops out.
"""

from __future__ import annotations

import sympy as sp

from .functions import sigmoid, softplus
from .graph import Graph, Value
from .shapes import dims_at, size

_EXPAND_LIMIT = 400  # count_ops above which expanding is not tried: it can grow without bound


def tidy(expr: sp.Expr) -> sp.Expr:
    expr = kinks(stable(expr))
    candidates = [expr]
    if sp.count_ops(expr) <= _EXPAND_LIMIT:
        expanded = sp.expand(expr, power_exp=False, power_base=False, log=False)
        candidates += [expanded, sp.factor_terms(expanded), sp.factor_terms(expr)]
    return min(candidates, key=lambda e: (sp.count_ops(e), len(str(e))))


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
        factors = sp.Mul.make_args(sp.factor_terms(term))
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
    terms = sp.Add.make_args(sp.expand(value.expr, power_exp=False, power_base=False, log=False))
    parts = [sum_of(term, dry_run=True) for term in terms]
    if all(part is not None for part in parts):
        return Value(tidy(sp.Add(*parts)), out_shape)
    return Value(sum_of(value.expr), out_shape)


def _sum_to_one(graph: Graph, expr: sp.Expr, axes: tuple[int, ...]):
    tensor = graph.tensors.get(expr)
    if tensor is not None and tensor.simplex_axis is not None and axes == (tensor.simplex_axis,):
        graph.note("sums to one", tensor.name)
        return sp.Integer(1)
    return None


def reduce_max(graph: Graph, value: Value, axis: int, stem: str = "m") -> Value:
    """max over one axis, kept as size 1."""
    shape = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    return graph.interned(stem, shape, "max", operands=(value,), axes=(axis,))
