"""layer_norm: (x − μ)/√(σ² + ε)·γ + β over the last axis; F.layer_norm, nn.LayerNorm (its parameters, TOML keys
and torch twin). Built from sums: its compact backward pass comes from Σ_e (x − μ)_e = 0, which reduce_sum finds."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, fraction, positive
from ..declare.tensor import Parameter, SymbolicTensor, as_value, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from .registry import TorchNames, defop
from .sum import reduce_sum


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
    if shape != value.shape[-1:]:
        why = f"spans {len(shape)} axes" if len(shape) > 1 else f"does not fit input {shape_text(value.shape)}"
        raise fail(f"F.layer_norm over the last axis only is supported: normalized_shape {shape!r} {why}")
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
    """torch.nn.LayerNorm over the last axis."""

    kind, toml_keys = "layer_norm", ("eps", "elementwise_affine")

    def __init__(self, normalized_shape: int, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.normalized_shape = positive(normalized_shape, "normalized_shape")
        self.eps = fraction(eps, "eps")
        self.elementwise_affine = flag(elementwise_affine, "elementwise_affine")
        if elementwise_affine:
            self.weight = Parameter((normalized_shape,), init="ones")
            self.bias = Parameter((normalized_shape,), init="zeros")

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("eps", fraction, 1e-5), table.get("elementwise_affine", flag, True))

    @classmethod
    def from_torch(cls, module):
        if len(module.normalized_shape) != 1:
            raise SymPropError(f"LayerNorm normalizes the last axis only, got normalized_shape "
                               f"{tuple(module.normalized_shape)}")
        if module.elementwise_affine and module.bias is None:
            raise SymPropError("LayerNorm(bias=False) is not supported yet")
        return cls(module.normalized_shape[0], module.eps, module.elementwise_affine)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        if getattr(x, "shape", ())[-1:] != (self.normalized_shape,):
            raise fail(f"LayerNorm expects width {self.normalized_shape}, but what flows in has shape "
                       f"{shape_text(getattr(x, 'shape', ()))}")
        affine = (self.weight, self.bias) if self.elementwise_affine else (None, None)
        return functional(x, (self.normalized_shape,), *affine, eps=self.eps)

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
