"""LayerNorm over the last axis, as torch.nn.LayerNorm, with its parameters, TOML keys and torch twin."""

from __future__ import annotations

from ...errors import SymPropError
from .. import functional as F
from ..module import Module
from ..options import Table, flag, fraction, positive
from ..tensor import Parameter, shape_text
from ..trace import fail


class LayerNorm(Module):
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
        return F.layer_norm(x, (self.normalized_shape,), *affine, eps=self.eps)

    def symbol_stem(self, name: str, tag: str) -> str:
        return {"weight": "g", "bias": "b"}[name] + tag

    def torch_twin(self):
        import torch

        return torch.nn.LayerNorm(self.normalized_shape, eps=self.eps, elementwise_affine=self.elementwise_affine)

    def describe(self) -> str:
        options = ("" if self.eps == 1e-5 else f", eps={self.eps}") + \
            ("" if self.elementwise_affine else ", elementwise_affine=False")
        return f"LayerNorm({self.normalized_shape}{options})"
