"""Composite operations, written once as SymPy expressions and graph primitives.

This is where the meaning of every layer and loss lives: activations are scalar SymPy
functions of z; linear maps are contractions; softmax and log-softmax are built from max, exp,
sum and log; layer norm from sums; each loss is an elementwise expression, summed and divided
as torch's reduction says. Nothing here is a derivative.
"""

from __future__ import annotations

import sympy as sp

from ..functions import sigmoid, softplus, xlogy
from ..shapes import N, size
from ..simplify import tidy
from .ir import Graph, Value
from .reduce import reduce_max, reduce_sum

z = sp.Symbol("z")

ACTIVATIONS = {  # scalar definitions, in z
    "sigmoid": sigmoid(z),
    "tanh": sp.tanh(z),
    "relu": sp.Max(z, 0),
    "gelu": z / 2 * (1 + sp.erf(z / sp.sqrt(2))),
    "softplus": softplus(z),
    "identity": z,
}


def activate(g: Graph, value: Value, scalar: sp.Expr, name: str) -> Value:
    """scalar(z) applied elementwise to value, labelled `name`; the definition is recorded for the reader."""
    if scalar != z and scalar not in g.activations:
        g.activations.append(scalar)
    return g.label(Value(tidy(scalar.xreplace({z: value.expr})), value.shape), name)


def linear(g: Graph, value: Value, weight: Value, bias, name: str) -> Value:
    """value @ weight.T + bias over the last axis, as torch's Linear; `name` labels the result.

    `bias` is a Value, None, or a function that makes the bias parameter (after the product, so
    that tensors are numbered in the order they are computed)."""
    name = g.fresh(name).name  # z_fc1, then z_fc1_1 for a layer applied again: its product and δ follow it
    lead = "nsabc"[:len(value.shape) - 1]
    out = g.einsum(f"{lead}i,oi->{lead}o", value, weight, stem="mm" + (name[1:] if name[0] == "z" else name))
    g.cotangent_names[out.expr] = f"d{name}"
    bias = bias() if callable(bias) else bias
    if bias is not None:
        out = Value(out.expr + bias.expr, out.shape)
    return g.label(out, name, reserved=True)


def mean_over(g: Graph, value: Value, axis: int, name: str) -> Value:
    """The mean over one axis, which is dropped: (batch, sequence, width) -> (batch, width) for axis 1."""
    kept = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    total = reduce_sum(g, value, kept, stem=f"pool{name[1:]}" if name[0] == "h" else f"sum_{name}")
    dropped = tuple(d for a, d in enumerate(value.shape) if a != axis)
    summed = g.rearrange(total, total.shape, tuple(range(len(kept))), dropped,
                         stem=f"sum{name[1:]}" if name[0] == "h" else f"sum_{name}")
    return g.label(Value(summed.expr / value.shape[axis], dropped), name)


def layer_norm(g: Graph, value: Value, eps: float, affine, name: str) -> Value:
    """(x − μ)/√(σ² + ε)·γ + β over the last axis, μ and σ² the mean and (biased) variance there.

    x − μ, σ² + ε, 1/√(σ² + ε) and x̂ are stored: the backward pass reads them, and later layers read x̂
    rather than its whole expression."""
    width = value.shape[-1]
    kept = value.shape[:-1] + (1,)
    mean = reduce_sum(g, value, kept, stem=f"sum_{name}")
    centred = Value(value.expr - mean.expr / width, value.shape)
    sums_to_zero = reduce_sum(g, centred, kept).expr == 0  # Σ_e (x − Σx/E) = Σx − Σx, found by reduce_sum
    centred = g.named(centred, f"xc_{name}")
    if sums_to_zero:
        g.tensor(centred.expr).zero_sum_axis = len(value.shape) - 1
    variance = reduce_sum(g, Value(centred.expr ** 2, value.shape), kept, stem=f"ss_{name}")
    shifted_variance = g.named(Value(variance.expr / width + sp.Float(eps), kept), f"var_{name}")
    rstd = g.named(Value(1 / sp.sqrt(shifted_variance.expr), kept), f"rstd_{name}")
    normed = g.named(Value(centred.expr * rstd.expr, value.shape), f"xhat_{name}")
    if affine is None:
        return normed
    weight, bias = (part() if callable(part) else part for part in affine)
    return g.named(Value(normed.expr * weight.expr + bias.expr, value.shape), name)


def log_softmax(g: Graph, value: Value, softmax_name: str, suffix: str = "") -> Value:
    """z − logsumexp(z), with the max shifted out: m = max_k z_k, s = Σ_k exp(z_k − m)."""
    shifted, exps, total = _shifted_exps(g, value, suffix)
    g.label(Value(exps.expr / total.expr, value.shape), softmax_name)
    return Value(shifted.expr - sp.log(total.expr), value.shape)


def softmax(g: Graph, value: Value, name: str, suffix: str = "") -> Value:
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis."""
    if g.book:
        g.note("max shift")
    _, exps, total = _shifted_exps(g, value, suffix)
    return g.label(Value(exps.expr / total.expr, value.shape), name)


def _shifted_exps(g: Graph, value: Value, suffix: str):
    last = len(value.shape) - 1
    kept = value.shape[:-1] + (1,)
    if g.book:  # the softmax as a book writes it; the code's max shift is said in a note (the loss's, or this)
        exps = g.label(Value(sp.exp(value.expr), value.shape), "e" + suffix)
        return value, exps, reduce_sum(g, exps, kept, stem="s" + suffix)
    g.safeguarded = True
    top = reduce_max(g, value, last, stem="m" + suffix, shift=True)
    # Named, so that printed code computes z − m before adding log s, as torch does: with
    # m + log(s) − z, a small log s is rounded away against a large m.
    shifted = g.label(Value(value.expr - top.expr, value.shape), "shifted" + suffix)
    exps = g.label(Value(sp.exp(shifted.expr), value.shape), "e" + suffix)
    total = reduce_sum(g, exps, kept, stem="s" + suffix)
    return shifted, exps, total


# -- losses: the loss of each element, then torch's reduction -------------------------------------
def _clamped_log(u: sp.Expr, clamp: bool) -> sp.Expr:
    """torch's BCELoss clamps log at −100, so that log 0 counts as −100 and stays finite."""
    return sp.Piecewise((sp.log(u), u > sp.exp(-100)), (-100, True)) if clamp else sp.log(u)


def squared_error(y: sp.Expr, t: sp.Expr) -> sp.Expr:
    return (y - t) ** 2


def binary_cross_entropy(g: Graph, y: sp.Expr, t: sp.Expr) -> sp.Expr:
    g.safeguarded |= not g.book
    return -(t * _clamped_log(y, not g.book) + (1 - t) * _clamped_log(1 - y, not g.book))


def binary_cross_entropy_with_logits(y: sp.Expr, t: sp.Expr) -> sp.Expr:
    p = sigmoid(y)
    return -(t * sp.log(p) + (1 - t) * sp.log(1 - p))


def kl_divergence(log_q: sp.Expr, p: sp.Expr) -> sp.Expr:
    return xlogy(p, p) - p * log_q


def class_targets(g: Graph, y: Value, t: Value, ignore_index: int | None = None):
    """(targets as a distribution over the last axis of y, the weight of each row, their count): one-hot rows for
    class indices; with `ignore_index`, a row whose target is it weighs 0 (and its one-hot row is class 0's, read
    only times 0), and the count is of the rows that weigh 1, as torch's mean divides by it."""
    if len(t.shape) != len(y.shape) - 1:
        return t.expr, sp.Integer(1), size(y.shape[:-1])
    if ignore_index is None:
        return g.onehot(t, y.shape[-1]).expr, sp.Integer(1), size(t.shape)
    column = g.rearrange(t, t.shape, tuple(range(len(t.shape))), t.shape + (1,), stem="t_col")  # broadcasts on y
    # Stored, so that it is one factor to simplification: Σ_k kept·onehot_k = kept·1, and the max still cancels.
    kept = g.named(Value(sp.Piecewise((0, sp.Eq(column.expr, ignore_index)), (1, True)), column.shape), "kept")
    classes = g.onehot(Value(sp.Piecewise((0, sp.Eq(t.expr, ignore_index)), (t.expr, True)), t.shape), y.shape[-1])
    count = reduce_sum(g, kept, (), stem="counted").expr
    return classes.expr, kept.expr, count


def reduce_loss(g: Graph, each: Value, reduction: str, per_sample: bool = False, count=None) -> Value:
    """Σ of the per-element losses, divided as torch's reduction says: "sum", "mean" (over every element,
    or over samples when `per_sample`: cross-entropy's rows, or over `count` of them), "batchmean" (over the
    batch)."""
    tidied = each.expr if g.book else tidy(each.expr)  # the book keeps log σ; the code, softplus (finite)
    if tidied.has(softplus) and not each.expr.has(softplus):
        g.note("stable log sigmoid")
    total = reduce_sum(g, Value(tidied, each.shape), (), stem="total")
    rows = count if count is not None else size(each.shape[:-1] if per_sample else each.shape)
    divisor = {"sum": 1, "mean": rows, "batchmean": N}[reduction]
    return Value(total.expr / divisor, ())
