"""Linear: x @ W.T + b, as torch.nn.Linear, with its parameters, TOML keys and torch twin."""

from __future__ import annotations

import math

from .. import functional as F
from ..module import Module
from ..options import Table, flag, positive
from ..tensor import Parameter, shape_text
from ..trace import fail


class Linear(Module):
    kind, toml_keys = "linear", ("outputs", "bias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = positive(in_features, "in_features")
        self.out_features = positive(out_features, "out_features")
        flag(bias, "bias")
        bound = 1 / math.sqrt(in_features)  # torch's default: U(±1/√fan_in), weight and bias alike
        self.weight = Parameter((out_features, in_features), init=("uniform", bound))
        self.bias = Parameter((out_features,), init=("uniform", bound)) if bias else None

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("outputs", positive), table.get("bias", flag, True))

    @classmethod
    def from_torch(cls, module):
        """The layer that torch.nn.Linear `module` is."""
        return cls(module.in_features, module.out_features, bias=module.bias is not None)

    def output_width(self, width: int) -> int:
        return self.out_features

    def forward(self, x):
        width = x.shape[-1] if getattr(x, "shape", ()) else None
        if width != self.in_features:
            raise fail(f"Linear expects {self.in_features} inputs, but what flows in has shape "
                       f"{shape_text(getattr(x, 'shape', ()))}")
        return F.linear(x, self.weight, self.bias)

    def symbol_stem(self, name: str, tag: str) -> str:
        return {"weight": "w", "bias": "b"}[name] + tag

    def torch_twin(self):
        import torch

        return torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)

    def describe(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}{'' if self.bias is not None else ', bias=False'})"
