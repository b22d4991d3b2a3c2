"""Lowering: each declared layer and loss, written once as SymPy expressions and primitives.

This is where the meaning of every layer lives. Activations are scalar SymPy
functions; softmax and log-softmax are built from max, exp, sum and log; each loss
is an elementwise expression, summed and divided as torch's reduction says.
Nothing here is a derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..declare import model as m
from ..functions import sigmoid, softplus, xlogy
from ..shapes import N, size
from ..simplify import reduce_max, reduce_sum, tidy
from .ir import Graph, Tensor, Value

z = sp.Symbol("z")

ACTIVATIONS = {  # scalar definitions, in z
    m.Sigmoid: sigmoid(z),
    m.Tanh: sp.tanh(z),
    m.ReLU: sp.Max(z, 0),
    m.GELU: z / 2 * (1 + sp.erf(z / sp.sqrt(2))),
    m.Identity: z,
}


@dataclass
class Lowered:
    graph: Graph
    x: Tensor
    t: Tensor
    output: Value  # the network's output, before the loss
    loss: Value  # a scalar
    params: dict[str, Tensor]  # state_dict key -> tensor
    network_names: set[str]  # names of the network's own values, before the loss


def lower(model: m.Model) -> Lowered:
    g = Graph()
    x = g.add("x", (N,) + ((model.sequence,) if model.sequence else ()) + (model.inputs,), "input")
    value, params = x, {}
    for i, layer in enumerate(model.net):
        value = _layer(g, i, layer, value, params)
    output = value
    network_names = {t.name for t in g.tensors.values()} | set(g.labels.values())
    target_shape = (N,) if model.loss.target == "index" else output.shape
    t = g.add("t", target_shape, "target",
              simplex_axis=1 if isinstance(model.loss, m.CrossEntropyLoss) and model.loss.target == "probs" else None)
    loss = g.label(_loss(g, model.loss, output, t, model.outputs), "L")
    return Lowered(g, g.tensor(x.expr), g.tensor(t.expr), output, loss, params, network_names)


def _param(g: Graph, params: dict, key: str, shape: tuple, name: str) -> Value:
    value = g.add(name, shape, "param", key=key)
    params[key] = g.tensor(value.expr)
    return value


def linear(g: Graph, value: Value, weight: Value, bias, name: str) -> Value:
    """value @ weight.T + bias over the last axis, as torch's Linear; `name` labels the result.

    `bias` is a Value, None, or a function that makes the bias parameter (after the product, so
    that tensors are numbered in the order they are computed)."""
    lead = "nsabc"[:len(value.shape) - 1]
    out = g.einsum(f"{lead}i,oi->{lead}o", value, weight, stem="mm" + (name[1:] if name[0] == "z" else name))
    g.cotangent_names[out.expr] = f"d{name}"
    bias = bias() if callable(bias) else bias
    if bias is not None:
        out = Value(out.expr + bias.expr, out.shape)
    return g.label(out, name)


def _layer(g: Graph, i: int, layer, value: Value, params: dict) -> Value:
    if isinstance(layer, m.Linear):
        weight = _param(g, params, f"{i}.weight", (layer.out_features, layer.in_features), f"w{i}")
        bias = (lambda: _param(g, params, f"{i}.bias", (layer.out_features,), f"b{i}")) if layer.bias else None
        return linear(g, value, weight, bias, f"z{i}")
    if isinstance(layer, m.LayerNorm):
        affine = None
        if layer.elementwise_affine:
            affine = (_param(g, params, f"{i}.weight", (layer.normalized_shape,), f"g{i}"),
                      _param(g, params, f"{i}.bias", (layer.normalized_shape,), f"b{i}"))
        return layer_norm(g, value, layer.eps, affine, f"h{i}")
    if isinstance(layer, m.MeanPool):
        total = reduce_sum(g, value, (value.shape[0], 1, value.shape[2]), stem=f"pool{i}")
        pooled = g.rearrange(total, total.shape, (0, 1, 2), (value.shape[0], value.shape[2]), stem=f"sum{i}")
        return g.label(Value(pooled.expr / value.shape[1], pooled.shape), f"h{i}")
    if isinstance(layer, m.TransformerEncoderLayer):
        from .transformer import encoder_layer

        return encoder_layer(g, i, layer, value, params)
    if isinstance(layer, m.Softmax):  # LogSoftmax too
        log_p = log_softmax(g, value, f"h{i}" if type(layer) is m.Softmax else f"p{i}")
        result = log_p if isinstance(layer, m.LogSoftmax) else Value(sp.exp(log_p.expr), value.shape)
        return g.label(result, f"h{i}")
    scalar = layer.expr if isinstance(layer, m.Elementwise) else ACTIVATIONS[type(layer)]
    return g.label(Value(tidy(scalar.xreplace({z: value.expr})), value.shape), f"h{i}")


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
    weight, bias = affine
    return g.named(Value(normed.expr * weight.expr + bias.expr, value.shape), name)


def log_softmax(g: Graph, value: Value, softmax_name: str, suffix: str = "") -> Value:
    """z − logsumexp(z), with the max shifted out: m = max_k z_k, s = Σ_k exp(z_k − m)."""
    shifted, exps, total = _shifted_exps(g, value, suffix)
    g.label(Value(exps.expr / total.expr, value.shape), softmax_name)
    return Value(shifted.expr - sp.log(total.expr), value.shape)


def softmax(g: Graph, value: Value, name: str, suffix: str = "") -> Value:
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis."""
    _, exps, total = _shifted_exps(g, value, suffix)
    return g.label(Value(exps.expr / total.expr, value.shape), name)


def _shifted_exps(g: Graph, value: Value, suffix: str):
    last = len(value.shape) - 1
    kept = value.shape[:-1] + (1,)
    top = reduce_max(g, value, last, stem="m" + suffix)
    # Named, so that printed code computes z − m before adding log s, as torch does: with
    # m + log(s) − z, a small log s is rounded away against a large m.
    shifted = g.label(Value(value.expr - top.expr, value.shape), "shifted" + suffix)
    exps = g.label(Value(sp.exp(shifted.expr), value.shape), "e" + suffix)
    total = reduce_sum(g, exps, kept, stem="s" + suffix)
    return shifted, exps, total


def _clamped_log(u: sp.Expr) -> sp.Expr:
    """torch's BCELoss clamps log at −100, so that log 0 counts as −100 and stays finite."""
    return sp.Piecewise((sp.log(u), u > sp.exp(-100)), (-100, True))


def _loss(g: Graph, loss, y: Value, t: Value, classes: int) -> Value:
    shape = y.shape
    if isinstance(loss, m.MSELoss):
        each = (y.expr - t.expr) ** 2
    elif isinstance(loss, m.BCELoss):
        each = -(t.expr * _clamped_log(y.expr) + (1 - t.expr) * _clamped_log(1 - y.expr))
    elif isinstance(loss, m.BCEWithLogitsLoss):
        p = sigmoid(y.expr)
        each = -(t.expr * sp.log(p) + (1 - t.expr) * sp.log(1 - p))
    elif isinstance(loss, (m.CrossEntropyLoss, m.NLLLoss)):
        targets = g.onehot(t, classes).expr if loss.target == "index" else t.expr
        log_p = log_softmax(g, y, "p").expr if isinstance(loss, m.CrossEntropyLoss) else y.expr
        each = -targets * log_p
    elif isinstance(loss, m.KLDivLoss):
        each = xlogy(t.expr, t.expr) - t.expr * y.expr
    elif isinstance(loss, m.ElementwiseLoss):
        each = loss.expr.xreplace({sp.Symbol("y"): y.expr, sp.Symbol("t"): t.expr})
    else:
        raise TypeError(loss)
    tidied = tidy(each)
    if tidied.has(softplus) and not each.has(softplus):
        g.note("stable log sigmoid")
    total = reduce_sum(g, Value(tidied, shape), (), stem="total")
    per_sample = isinstance(loss, (m.CrossEntropyLoss, m.NLLLoss)) or loss.reduction == "batchmean"
    divisor = {"sum": 1, "mean": N if per_sample else size(shape), "batchmean": N}[loss.reduction]
    return Value(total.expr / divisor, ())
