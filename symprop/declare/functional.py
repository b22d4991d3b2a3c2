"""torch.nn.functional's names for what symprop computes: `import symprop.functional as F`.

Each function works on symbolic tensors (it adds to the graph being traced) and on torch
tensors (it calls torch's own function), so that one forward serves both the derivation and
the torch reference. What each computes is written once, in `symprop.graph.nn`.
"""

from __future__ import annotations

import sys

import sympy as sp

from ..functions import softplus as _softplus
from ..graph import Value
from ..graph import nn as gnn
from .parse import FUNCTIONS
from .tensor import Parameter, SymbolicTensor, _kind, as_value, elementwise, shape_text
from .torch_eval import require_torch
from .trace import ClassIndices, fail, running

REDUCTIONS = ("mean", "sum")


def _torch():
    return require_torch("running a model in torch")


def _resolved(thing):
    return thing.resolve() if isinstance(thing, Parameter) else thing


def _in_torch(*things) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and any(isinstance(t, torch.Tensor) for t in things)


def _symbolic(thing, where: str) -> Value:
    """The Value of a tensor argument; refuses numbers, lambdas and the like."""
    if not isinstance(thing, SymbolicTensor):
        raise fail(f"{where} expects a tensor, got {_kind(thing)}")
    return thing.value


def _trace():
    return running()


# -- activations ---------------------------------------------------------------------------------
def _activation(input, name: str, torch_call):
    input = _resolved(input)
    if _in_torch(input):
        return torch_call(input)
    value = _symbolic(input, f"F.{name}")
    trace = _trace()
    result = gnn.activate(trace.graph, value, gnn.ACTIVATIONS[name], trace.stem("h"))
    trace.graph.made_by[result.expr] = name
    return SymbolicTensor(result)


def _applied_twice(y: Value, function: str, loss: str) -> None:
    """A loss that applies `function` itself, to a value `function` made: a classic mistake, noted for the reader."""
    graph = _trace().graph
    if graph.made_by.get(y.expr) == function:
        graph.note(f"double {function}", loss)


def relu(input, inplace=False):
    return _activation(input, "relu", lambda x: _torch().relu(x))


def sigmoid(input):
    return _activation(input, "sigmoid", lambda x: _torch().sigmoid(x))


def tanh(input):
    return _activation(input, "tanh", lambda x: _torch().tanh(x))


def gelu(input, approximate="none"):
    if approximate != "none":
        raise fail(f"F.gelu: only the exact GELU (approximate='none') is supported, got {approximate!r}")
    return _activation(input, "gelu", lambda x: _torch().nn.functional.gelu(x))


def dropout(input, p=0.5, training=True, inplace=False):
    """Dropout with p = 0 (or not training) is the identity, which is what symprop derives; any other is refused."""
    if p and training:
        raise fail(f"F.dropout: p must be 0.0 (or training False), which is what symprop derives, got p={p}")
    return input


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(βx))/β, and x itself where βx > threshold, as torch computes it."""
    input = _resolved(input)
    if _in_torch(input):
        return _torch().nn.functional.softplus(input, beta=beta, threshold=threshold)
    value = _symbolic(input, "F.softplus")
    z, trace = gnn.z, _trace()
    scalar = sp.Piecewise((z, beta * z > threshold), (_softplus(beta * z) / beta, True))
    return SymbolicTensor(gnn.activate(trace.graph, value, scalar, trace.stem("h")))


def elementwise_function(input, expr: sp.Expr):
    """A custom activation: a SymPy expression in z, applied to every entry."""
    input = _resolved(input)
    if _in_torch(input):
        from .torch_eval import to_torch

        return to_torch(expr, {"z": input}) + 0 * input  # a constant activation broadcasts
    trace = _trace()
    return SymbolicTensor(gnn.activate(trace.graph, _symbolic(input, "activation"), expr, trace.stem("h")))


def _last_axis(input, dim, where: str) -> Value:
    value = _symbolic(input, where)
    if dim not in (-1, len(value.shape) - 1):
        raise fail(f"{where} acts on the last axis (dim=-1), got dim={dim}")
    return value


def softmax(input, dim=-1):
    input = _resolved(input)
    if _in_torch(input):
        return _torch().softmax(input, dim=dim)
    value, trace = _last_axis(input, dim, "F.softmax"), _trace()
    name = trace.stem("h")
    log_p = gnn.log_softmax(trace.graph, value, name)
    result = trace.graph.label(Value(sp.exp(log_p.expr), value.shape), name)
    trace.graph.made_by[result.expr] = "softmax"
    return SymbolicTensor(result)


def log_softmax(input, dim=-1):
    input = _resolved(input)
    if _in_torch(input):
        return _torch().log_softmax(input, dim=dim)
    value, trace = _last_axis(input, dim, "F.log_softmax"), _trace()
    log_p = gnn.log_softmax(trace.graph, value, trace.stem("p"))
    return SymbolicTensor(trace.graph.label(log_p, trace.stem("h")))


def linear(input, weight, bias=None):
    """input @ weight.T + bias, over the last axis of input."""
    input, weight_ = _resolved(input), _resolved(weight)
    if _in_torch(input, weight_):
        return _torch().nn.functional.linear(input, weight_, _resolved(bias))
    value, w = _symbolic(input, "F.linear"), _symbolic(weight_, "F.linear weight")
    if len(w.shape) != 2 or not value.shape or value.shape[-1] != w.shape[1]:
        raise fail(f"F.linear: input {shape_text(value.shape)} and weight {shape_text(w.shape)} do not fit "
                   "(the weight is (outputs, inputs))")

    def make_bias():  # after the product, so that values are numbered in the order they are computed
        if bias is None:
            return None
        b = as_value(bias, "F.linear bias")
        if b.shape not in ((w.shape[0],), ()):
            raise fail(f"F.linear: bias {shape_text(b.shape)} does not fit weight {shape_text(w.shape)}")
        return b

    trace = _trace()
    return SymbolicTensor(gnn.linear(trace.graph, value, w, make_bias, trace.stem("z")))


def embedding(input, weight):
    """The rows of `weight` (num_embeddings, dim) that the integer ids in `input` pick, as torch's F.embedding."""
    input, weight_ = _resolved(input), _resolved(weight)
    if _in_torch(input, weight_):
        return _torch().nn.functional.embedding(input, weight_)
    table = _symbolic(weight_, "F.embedding weight")
    trace = _trace()
    tensor = trace.graph.tensors.get(input.value.expr) if isinstance(input, SymbolicTensor) else None
    if tensor is None or tensor.op != "input":
        raise fail("F.embedding reads integer token ids: an input of the model as given, not a computed value")
    if len(table.shape) != 2:
        raise fail(f"F.embedding: the table must be (num_embeddings, dim), got {shape_text(table.shape)}")
    tensor.index_range = min(tensor.index_range or table.shape[0], table.shape[0])
    return SymbolicTensor(trace.graph.gather(table, input.value, stem=trace.stem("emb")))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    input = _resolved(input)
    if _in_torch(input):
        return _torch().nn.functional.layer_norm(input, normalized_shape, _resolved(weight), _resolved(bias), eps)
    value = _symbolic(input, "F.layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if shape != value.shape[-1:]:
        raise fail(f"F.layer_norm normalizes the last axis: normalized_shape {shape!r} does not fit input "
                   f"{shape_text(value.shape)}")
    if (weight is None) != (bias is None):
        raise fail("F.layer_norm: give both weight and bias, or neither")
    affine = None
    if weight is not None:
        affine = tuple(_affine(part, shape, name) for part, name in ((weight, "weight"), (bias, "bias")))
    trace = _trace()
    return SymbolicTensor(gnn.layer_norm(trace.graph, value, eps, affine, trace.stem("h")))


def _affine(part, shape, name):
    value = as_value(part, f"F.layer_norm {name}")
    if value.shape != shape:
        raise fail(f"F.layer_norm: {name} {shape_text(value.shape)} does not fit {shape_text(shape)}")
    return value


# -- losses --------------------------------------------------------------------------------------
def _loss_operands(name, input, target, reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise fail(f"F.{name}: reduction must be one of {', '.join(allowed)}, got {reduction!r}")
    return _symbolic(input, f"F.{name}"), _symbolic(target, f"F.{name} target")


def _same_shape(name, y: Value, t: Value):
    if y.shape != t.shape:
        raise fail(f"F.{name}: target {shape_text(t.shape)} and input {shape_text(y.shape)} differ in shape")


def _reduced(y: Value, each, reduction, per_sample=False, count=None):
    return SymbolicTensor(gnn.reduce_loss(_trace().graph, Value(each, y.shape), reduction, per_sample, count))


def mse_loss(input, target, reduction="mean"):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.mse_loss(input, target, reduction=reduction)
    y, t = _loss_operands("mse_loss", input, target, reduction)
    _same_shape("mse_loss", y, t)
    return _reduced(y, gnn.squared_error(y.expr, t.expr), reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.binary_cross_entropy(input, target, weight, reduction=reduction)
    _unsupported("binary_cross_entropy", weight=weight)
    y, t = _loss_operands("binary_cross_entropy", input, target, reduction)
    _same_shape("binary_cross_entropy", y, t)
    return _reduced(y, gnn.binary_cross_entropy(_trace().graph, y.expr, t.expr), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.binary_cross_entropy_with_logits(input, target, weight, reduction=reduction,
                                                                       pos_weight=pos_weight)
    _unsupported("binary_cross_entropy_with_logits", weight=weight, pos_weight=pos_weight)
    y, t = _loss_operands("binary_cross_entropy_with_logits", input, target, reduction)
    _applied_twice(y, "sigmoid", "binary_cross_entropy_with_logits")
    _same_shape("binary_cross_entropy_with_logits", y, t)
    return _reduced(y, gnn.binary_cross_entropy_with_logits(y.expr, t.expr), reduction)


def _class_targets(name, y: Value, t: Value, ignore_index: int):
    """(targets, row weights, row count) for class indices (one axis fewer than y, whose last axis holds the
    classes) or probabilities (y's shape). Token-level targets (with a sequence axis, or flattened from one) and an
    ignore_index other than torch's default skip the rows whose target is ignore_index, as torch does."""
    graph = _trace().graph
    source = graph.tensors.get(t.expr)
    while source is not None and source.op == "rearrange":  # t.reshape(-1) reads the target too
        source = graph.tensors.get(source.operands[0].expr)
    if source is not None and source.op == "target" and getattr(_trace(), "target_open", False) and \
            t.shape != y.shape[:-1]:  # the target's kind is open, and as the output's shape it is no index
        raise ClassIndices
    if len(t.shape) == len(y.shape) - 1:
        if t.shape != y.shape[:-1]:
            raise fail(f"F.{name}: class-index target {shape_text(t.shape)} does not fit input {shape_text(y.shape)}")
        if y.shape[-1] < 2:
            raise fail(f"F.{name} with class-index targets needs at least 2 classes, the input has {y.shape[-1]}")
        masked = ignore_index != -100 or len(t.shape) > 1 or _flattened(graph, t)
        return gnn.class_targets(graph, y, t, ignore_index if masked else None)
    _same_shape(name, y, t)
    return gnn.class_targets(graph, y, t)


def _flattened(graph, t: Value) -> bool:
    """A target reshaped from one with a sequence axis: t.reshape(-1), for a token-level loss."""
    tensor = graph.tensors.get(t.expr)
    while tensor is not None and tensor.op == "rearrange":
        if len(tensor.operands[0].shape) > 1:
            return True
        tensor = graph.tensors.get(tensor.operands[0].expr)
    return False


def _classes_last(name, y: Value, t: Value) -> Value:
    """torch's layout, classes on axis 1 ((N, C, d1, ...) with targets (N, d1, ...)), moved to the last axis."""
    if len(y.shape) > 2 and len(t.shape) == len(y.shape) - 1:
        if (y.shape[0], *y.shape[2:]) != t.shape:
            raise fail(f"F.{name}: input {shape_text(y.shape)} has its classes on axis 1, as torch's; the target "
                       f"{shape_text(t.shape)} does not fit it")
        return SymbolicTensor(y).permute(0, *range(2, len(y.shape)), 1).value
    return y


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.cross_entropy(input, target, weight, ignore_index=ignore_index,
                                                    reduction=reduction, label_smoothing=label_smoothing)
    _unsupported("cross_entropy", weight=weight, label_smoothing=label_smoothing or None)
    y, t = _loss_operands("cross_entropy", input, target, reduction)
    _applied_twice(y, "softmax", "cross_entropy")
    y = _classes_last("cross_entropy", y, t)
    targets, kept, count = _class_targets("cross_entropy", y, t, ignore_index)
    graph = _trace().graph
    if targets is t.expr and t.expr in graph.tensors and graph.tensors[t.expr].op == "target":
        graph.tensors[t.expr].simplex_axis = len(t.shape) - 1  # probabilities: each row sums to 1
    log_p = gnn.log_softmax(graph, y, "p")
    return _reduced(y, -kept * targets * log_p.expr, reduction, per_sample=True, count=count)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)
    _unsupported("nll_loss", weight=weight)
    y, t = _loss_operands("nll_loss", input, target, reduction)
    y = _classes_last("nll_loss", y, t)
    targets, kept, count = _class_targets("nll_loss", y, t, ignore_index)
    if targets is t.expr:
        raise fail(f"F.nll_loss takes class-index targets, got a target of shape {shape_text(t.shape)}")
    return _reduced(y, -kept * targets * y.expr, reduction, per_sample=True, count=count)


def kl_div(input, target, reduction="mean", log_target=False):
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        return _torch().nn.functional.kl_div(input, target, reduction=reduction, log_target=log_target)
    _unsupported("kl_div", log_target=log_target or None)
    y, t = _loss_operands("kl_div", input, target, reduction, REDUCTIONS + ("batchmean",))
    _same_shape("kl_div", y, t)
    return _reduced(y, gnn.kl_divergence(y.expr, t.expr), reduction, per_sample=reduction == "batchmean")


def elementwise_loss(input, target, expr: sp.Expr, reduction="mean"):
    """A custom loss: a SymPy expression in y (the output) and t (the target), per element, then reduced."""
    input, target = _resolved(input), _resolved(target)
    if _in_torch(input, target):
        from .torch_eval import to_torch

        torch = _torch()
        each = torch.as_tensor(to_torch(expr, {"y": input, "t": target})).expand_as(input)
        return each.mean() if reduction == "mean" else each.sum()
    y, t = _loss_operands("elementwise loss", input, target, reduction)
    _same_shape("elementwise loss", y, t)
    return _reduced(y, expr.xreplace({sp.Symbol("y"): y.expr, sp.Symbol("t"): t.expr}), reduction)


def _unsupported(name, **options):
    for option, value in options.items():
        if value is not None:
            raise fail(f"F.{name}: {option} is not supported by symprop yet")


# -- symprop.exp, symprop.log, ...: the allow-listed elementwise functions ------------------------------
_TORCH_NAMES = {"Abs": "abs", "Max": "maximum", "Min": "minimum", "softplus": "nn.functional.softplus"}


def _math_function(name: str, sympy_function):
    def function(*inputs):
        inputs = tuple(_resolved(x) for x in inputs)
        if _in_torch(*inputs):
            fn = _torch()
            for part in _TORCH_NAMES.get(name, name).split("."):
                fn = getattr(fn, part)
            return fn(*inputs)
        if not any(isinstance(x, SymbolicTensor) for x in inputs):
            raise fail(f"symprop.{function.__name__} expects a tensor, got {', '.join(map(_kind, inputs))}")
        return elementwise(sympy_function, inputs, f"symprop.{function.__name__}")

    function.__name__ = _TORCH_NAMES.get(name, name).split(".")[-1]
    function.__doc__ = f"{function.__name__}, elementwise: symbolic while tracing, torch's on torch tensors."
    return function


MATH = {f.__name__: f for f in (_math_function(name, fn) for name, fn in FUNCTIONS.items()
                                if name not in ("abs", "max", "min"))}

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "embedding", "gelu",
           "kl_div", "layer_norm", "linear", "log_softmax", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax",
           "softplus", "tanh"]
