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
    x = g.add("x", (N, model.inputs), "input")
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


def _layer(g: Graph, i: int, layer, value: Value, params: dict) -> Value:
    if isinstance(layer, m.Linear):
        weight = g.add(f"w{i}", (layer.out_features, layer.in_features), "param", key=f"{i}.weight")
        params[f"{i}.weight"] = g.tensor(weight.expr)
        out = g.einsum("ni,oi->no", value, weight, stem=f"mm{i}")
        g.cotangent_names[out.expr] = f"dz{i}"
        if layer.bias:
            bias = g.add(f"b{i}", (layer.out_features,), "param", key=f"{i}.bias")
            params[f"{i}.bias"] = g.tensor(bias.expr)
            out = Value(out.expr + bias.expr, out.shape)
        return g.label(out, f"z{i}")
    if isinstance(layer, m.Softmax):  # LogSoftmax too
        log_p = log_softmax(g, value, f"h{i}" if type(layer) is m.Softmax else f"p{i}")
        result = log_p if isinstance(layer, m.LogSoftmax) else Value(sp.exp(log_p.expr), value.shape)
        return g.label(result, f"h{i}")
    scalar = layer.expr if isinstance(layer, m.Elementwise) else ACTIVATIONS[type(layer)]
    return g.label(Value(tidy(scalar.xreplace({z: value.expr})), value.shape), f"h{i}")


def log_softmax(g: Graph, value: Value, softmax_name: str) -> Value:
    """z − logsumexp(z), with the max shifted out: m = max_k z_k, s = Σ_k exp(z_k − m)."""
    last = len(value.shape) - 1
    kept = value.shape[:-1] + (1,)
    top = reduce_max(g, value, last, stem="m")
    # Named, so that printed code computes z − m before adding log s, as torch does: with
    # m + log(s) − z, a small log s is rounded away against a large m.
    shifted = g.label(Value(value.expr - top.expr, value.shape), "shifted")
    exps = g.label(Value(sp.exp(shifted.expr), value.shape), "e")
    total = reduce_sum(g, exps, kept, stem="s")
    g.label(Value(exps.expr / total.expr, value.shape), softmax_name)
    return Value(shifted.expr - sp.log(total.expr), value.shape)


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
