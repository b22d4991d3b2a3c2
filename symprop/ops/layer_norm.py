"""layer_norm: (x − μ)/√(σ² + ε)·γ + β over the last axis; F.layer_norm, nn.LayerNorm (its parameters, TOML keys
and torch twin). Built from sums: its compact backward pass comes from Σ_e (x − μ)_e = 0, which reduce_sum finds."""

from __future__ import annotations

import math

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, fraction, positive
from ..declare.tensor import Parameter, SymbolicTensor, as_value, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..graph.ir import Tensor
from ..plan.uses import Uses, unused
from ..program import Statement
from .registry import Call, TorchNames, call, defop, lookup, plan_rule
from .sum import read_back_normed, reduce_sum


def layer_norm_graph(g: Graph, value: Value, eps: float, affine, name: str) -> Value:
    """(x − μ)/√(σ² + ε)·γ + β over the last axis, μ and σ² the mean and (biased) variance there.

    x − μ, σ² + ε, 1/√(σ² + ε) and x̂ are stored: the backward pass reads them, and later layers read x̂
    rather than its whole expression."""
    width = value.shape[-1]
    kept = value.shape[:-1] + (1,)
    if not value.expr.is_Symbol:  # a sum of arrays (a residual) is stored: its δ, read by both of its terms, too
        value = g.named(value, f"x_{name}")
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
    if sums_to_zero:
        read_back_normed(g, centred, rstd, normed)
        g.tensor(normed.expr).keeps_cotangent = True  # its δ is read by two sums and by δx
    if affine is None:
        return normed
    weight, bias = (part() if callable(part) else part for part in affine)  # either may be None (no bias)
    scaled = normed.expr * weight.expr if weight is not None else normed.expr
    return g.named(Value(scaled + bias.expr if bias is not None else scaled, value.shape), name)


def functional(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch's F.layer_norm over the last axis."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(TORCH.functions[0])(input, normalized_shape, resolved(weight), resolved(bias), eps)
    value = symbolic(input, "F.layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) > 1 and tuple(value.shape[-len(shape):]) == shape and len(value.shape) > len(shape):
        # over several last axes (LayerNorm([C, H, W]) after a convolution): over them flattened into one
        flat = (-1, *value.shape[1:-len(shape)], math.prod(shape))
        parts = [None if part is None else resolved(part).reshape(math.prod(shape)) for part in (weight, bias)]
        normed = functional(resolved(input).reshape(*flat), math.prod(shape), *parts, eps=eps)
        return normed.reshape(-1, *value.shape[1:])
    if shape != value.shape[-1:]:
        raise fail(f"F.layer_norm: normalized_shape {shape!r} does not fit input {shape_text(value.shape)} (its last "
                   "axes, after the batch's)")
    affine = None  # LayerNorm(bias=False) gives a weight alone
    if weight is not None or bias is not None:
        affine = tuple(None if part is None else _affine(part, shape, name)
                       for part, name in ((weight, "weight"), (bias, "bias")))
    trace = running()
    return SymbolicTensor(layer_norm_graph(trace.graph, value, eps, affine, trace.stem("h")))


functional.__name__ = functional.__qualname__ = "layer_norm"


def _affine(part, shape, name):
    value = as_value(part, f"F.layer_norm {name}")
    if value.shape != shape:
        raise fail(f"F.layer_norm: {name} {shape_text(value.shape)} does not fit {shape_text(shape)}")
    return value


class LayerNorm(Module):
    """torch.nn.LayerNorm over the last axis, or over several (normalized_shape a tuple)."""

    kind, toml_keys = "layer_norm", ("eps", "elementwise_affine")

    def __init__(self, normalized_shape: int | tuple, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        several = isinstance(normalized_shape, (tuple, list))  # over several last axes: LayerNorm([C, H, W])
        self.normalized_shape = tuple(positive(n, "normalized_shape") for n in normalized_shape) if several else \
            positive(normalized_shape, "normalized_shape")
        self.shape = self.normalized_shape if several else (self.normalized_shape,)
        self.eps = fraction(eps, "eps")
        self.elementwise_affine = flag(elementwise_affine, "elementwise_affine")
        if elementwise_affine:
            self.weight = Parameter(self.shape, init="ones")
            self.bias = Parameter(self.shape, init="zeros")

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("eps", fraction, 1e-5), table.get("elementwise_affine", flag, True))

    @classmethod
    def from_torch(cls, module):
        if module.elementwise_affine and module.bias is None:
            raise SymPropError("LayerNorm(bias=False) is not supported yet")
        shape = tuple(module.normalized_shape)
        return cls(shape if len(shape) > 1 else shape[0], module.eps, module.elementwise_affine)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        if tuple(getattr(x, "shape", ())[-len(self.shape):]) != self.shape:
            raise fail(f"LayerNorm expects width {self.normalized_shape}, but what flows in has shape "
                       f"{shape_text(getattr(x, 'shape', ()))}")
        affine = (self.weight, self.bias) if self.elementwise_affine else (None, None)
        return functional(x, self.shape, *affine, eps=self.eps)

    def symbol_stem(self, name: str, tag: str) -> str:
        return {"weight": "g", "bias": "b"}[name] + tag

    def torch_twin(self):
        import torch

        return torch.nn.LayerNorm(self.normalized_shape, eps=self.eps, elementwise_affine=self.elementwise_affine)

    def describe(self) -> str:
        options = ("" if self.eps == 1e-5 else f", eps={self.eps}") + \
            ("" if self.elementwise_affine else ", elementwise_affine=False")
        return f"LayerNorm({self.normalized_shape}{options})"


TORCH = TorchNames(("torch.nn.functional.layer_norm",), (), "LayerNorm",
                   ("aten.layer_norm.default", "aten.native_layer_norm.default"))
defop("layer_norm", torch=TORCH, layer=LayerNorm, functional=functional, init_doc="LayerNorm ones and zeros",
      front={"aten.layer_norm.default": lambda input, normalized_shape, weight=None, bias=None, eps=1e-5,
             cudnn_enable=True: functional(input, normalized_shape, weight, bias, eps)})


# -- one call, where the backend has one -------------------------------------------------------------------------------
# The forward pass's steps of a layer norm, Σx, x − μ, Σ(x − μ)², σ² + ε, σ⁻¹ and x̂, are one pass of torch's kernel:
#   ln = torch.native_layer_norm(x, (E,), None, None, ε)    (x̂, μ and σ⁻¹, at once)
#   xhat = ln[0], rstd = ln[2]                               (what the backward pass and the affine map read)
#   h = F.layer_norm(x, (E,), γ, β, ε)                       (where only the affine map γ·x̂ + β reads x̂: forward)
def _torch_call(printer, statement, texts, into):
    info = statement.tensor
    if info.key == "affine":  # texts: x, then γ and β, those of them that info.spec names ("wb", "w" or "b")
        given = dict(zip(info.spec, texts[1:], strict=True))
        return f"{printer._module_format('torch.nn.functional.layer_norm')}({texts[0]}, ({statement.shape[-1]},), " \
            f"{given.get('w', 'None')}, {given.get('b', 'None')}, {info.data[0]!r})"
    if info.key == "pair":  # texts: x
        return f"{printer._module_format('torch.native_layer_norm')}({texts[0]}, ({statement.shape[-1]},), None, " \
            f"None, {info.data[0]!r})"
    return f"{texts[0]}[{0 if info.key == 'normed' else 2}]"  # texts: the pair


lookup("layer_norm").calls = {"torch": Call(_torch_call)}


@plan_rule
def one_call(uses: Uses, shapes: dict, backend: str) -> Uses:
    """The steps of a layer norm's forward pass, up to x̂ and σ⁻¹, as the backend's one call, where nothing else
    reads the steps between (the derivation reads x − μ as x̂/σ⁻¹; a layer norm written out by hand keeps its
    steps)."""
    if call("layer_norm", backend) is None:
        return uses
    for total in [s for s in uses.statements if s.kind == "sum"]:
        steps = _steps(uses, total, shapes)
        if steps is None:
            continue
        x, centred, squares, variance, rstd, normed, eps = steps
        stem = "ln" + normed.name[4:] if normed.name.startswith("xhat") else f"{normed.name}_ln"  # xhat_h: ln_h
        symbol = sp.Symbol(unused(stem, {s.name for s in uses.statements}), real=True)
        shapes[symbol] = normed.shape
        pair = Statement(symbol.name, "call", operands=(x,), shape=normed.shape, op="layer_norm",
                         tensor=Tensor(symbol, tuple(normed.shape), "layer_norm", key="pair", data=(eps,)))
        made = [pair] + [Statement(s.name, "call", operands=(symbol,), shape=s.shape, op="layer_norm", label=s.label,
                                   tensor=Tensor(s.symbol, tuple(s.shape), "layer_norm", key=key))
                         for s, key in ((normed, "normed"), (rstd, "rstd"))]
        group = [total, centred, squares, variance, rstd, normed]
        affine = _affine_map(uses, normed, rstd, shapes)
        if affine is not None:  # the affine map reads x̂ alone: the whole layer is one call
            statement, parts = affine
            made = [Statement(statement.name, "call", operands=(x, *parts.values()), shape=statement.shape,
                              op="layer_norm", label=statement.label,
                              tensor=Tensor(statement.symbol, tuple(statement.shape), "layer_norm", key="affine",
                                            spec="".join(parts), data=(eps,)))]
            group.append(statement)
        where = uses.statements.index(total)
        rest = [s for s in uses.statements if all(s is not g for g in group)]
        uses = Uses(rest[:where] + made + rest[where:], uses.outputs)
    return uses


def _affine_map(uses: Uses, normed: Statement, rstd: Statement, shapes: dict):
    """(the statement, {"w": γ, "b": β}) where x̂ is read by γ·x̂ + β alone (γ and β vectors of the normalized axis,
    either absent) and σ⁻¹ by x̂ alone; None otherwise."""
    readers = uses.readers(normed.symbol)
    if len(readers) != 1 or readers[0].kind != "map" or [r for r in uses.readers(rstd.symbol) if r is not normed]:
        return None
    terms = sp.Add.make_args(readers[0].operands[0])
    scaled = [t for t in terms if normed.symbol in t.free_symbols]
    shifts = [t for t in terms if normed.symbol not in t.free_symbols]
    if len(scaled) != 1 or len(shifts) > 1:
        return None
    parts = {"w": scaled[0] / normed.symbol, "b": shifts[0] if shifts else 0}
    parts = {key: part for key, part in parts.items() if part not in (0, 1)}
    if not parts or not all(p.is_Symbol and tuple(shapes.get(p, ())) == normed.shape[-1:] for p in parts.values()):
        return None
    return readers[0], parts


def _steps(uses: Uses, total: Statement, shapes: dict):
    """(x, x − μ, Σ(x − μ)², σ² + ε, σ⁻¹, x̂, ε): the statements a layer norm's forward pass makes from the sum
    `total` of x over its last axis, each read by the next alone; None where they are not that."""
    x, shape = total.operands[0], total.shape
    if not x.is_Symbol or len(shape) < 2 or shape[-1] != 1 or total.tensor.axes != (len(shape) - 1,):
        return None
    width = shapes.get(x, ())[-1:]
    if not width or not isinstance(width[0], int):
        return None

    def only_reader(statement, kind, definition):
        readers = uses.readers(statement.symbol)
        return readers[0] if len(readers) == 1 and readers[0].kind == kind and (
            definition(readers[0].operands[0])) else None

    centred = only_reader(total, "map", lambda e: e == x - total.symbol / width[0])
    readers = uses.readers(centred.symbol) if centred is not None else []
    squares = next((r for r in readers if r.kind == "sum" and r.operands[0] == centred.symbol ** 2 and
                    r.tensor.axes == total.tensor.axes), None)
    normed = next((r for r in readers if r.kind == "map"), None)
    if len(readers) != 2 or squares is None or normed is None:
        return None
    variance = only_reader(squares, "map", lambda e: (e - squares.symbol / width[0]).is_Float)
    rstd = variance and only_reader(variance, "map", lambda e: e == 1 / sp.sqrt(variance.symbol))
    if rstd is None or normed.operands[0] != rstd.symbol * centred.symbol:
        return None
    eps = float(variance.operands[0] - squares.symbol / width[0])
    return x, centred, squares, variance, rstd, normed, eps
