"""Reductions that build graph tensors: sums and maxima over axes.

`reduce_sum` pulls factors that are constant along the summed axes out of the sum and reuses an
existing sum of the rest, which is how the max of a log-sum-exp drops out, and how Σ_k t_k = 1
and Σ_e (x − μ)_e = 0 are found.
"""

from __future__ import annotations

import sympy as sp

from ..notes import define
from ..shapes import dims_at, size
from ..simplify import EXPAND_TERMS, terms_when_expanded, tidy
from .ir import Graph, Tensor, Value, defvjp

SUMS_TO_ONE = "sums to one"  # a note that cross-entropy defines: targets that are distributions
SUMS_TO_ZERO = define(
    "sums to zero", "Σ_e {0}_e = 0: {0} is centred on its mean over the last axis",
    r"$\sum_e ({0})_{{e}} = 0$ over the last axis: ${0}$ is centred on its mean there. This is what makes layer "
    r"norm's backward pass compact: $\bar{{x}} = \mathrm{{rstd}} \odot (\bar{{\hat{{x}}}} - "
    r"\operatorname{{mean}}(\bar{{\hat{{x}}}}) - x_c \odot \mathrm{{rstd}}^{{2}} \odot "
    r"\operatorname{{mean}}(\bar{{\hat{{x}}}} \odot x_c))$, which is $\mathrm{{rstd}} \odot (\bar{{\hat{{x}}}} - "
    r"\operatorname{{mean}}(\bar{{\hat{{x}}}}) - \hat{{x}} \odot \operatorname{{mean}}(\bar{{\hat{{x}}}} "
    r"\odot \hat{{x}}))$ with $\hat{{x}} = x_c \odot \mathrm{{rstd}}$.")


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
    if terms_when_expanded(value.expr) > EXPAND_TERMS:
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
        graph.note(SUMS_TO_ONE, tensor.name)
        return sp.Integer(1)
    if tensor is not None and tensor.zero_sum_axis is not None and axes == (tensor.zero_sum_axis,):
        graph.note(SUMS_TO_ZERO, tensor.name)
        return sp.Integer(0)
    return None


def reduce_max(graph: Graph, value: Value, axis: int, stem: str = "m", shift: bool = False) -> Value:
    """max over one axis, kept as size 1. `shift`: it is subtracted and the result does not depend on it
    (e^(z − c)/Σ e^(z − c) = e^z/Σ e^z for any c constant along the axis), so no gradient flows through it, as
    jax stops it."""
    shape = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    return graph.interned(stem, shape, "max", operands=(value,), axes=(axis,), shift=shift)


@defvjp("sum")
def _sum_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0]:  # broadcast back over the summed axes (sums drop leading axes only, or keep them as 1)
        yield tensor.operands[0], Value(cotangent.expr, tensor.operands[0].shape)


@defvjp("max")
def _max_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0] and not tensor.shift:  # to the elements equal to the max, as max_k z_k = Σ_k z_k·[z_k = max z]
        (operand,) = tensor.operands
        yield operand, Value(cotangent.expr * sp.Piecewise((1, sp.Eq(operand.expr, tensor.symbol)), (0, True)),
                             operand.shape)
