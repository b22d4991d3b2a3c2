"""Activations and softmax layers: each a scalar function of z (graph.nn.ACTIVATIONS) or a softmax
over the last axis, with its TOML name and torch twin."""

from __future__ import annotations

import sympy as sp

from ...errors import SymPropError
from ...graph.nn import z
from .. import functional as F
from ..module import Module
from ..options import Table
from ..parse import parse


class Activation(Module):
    """An elementwise layer: F.<kind> applied to what flows in."""

    kind = ""
    toml_keys = ()

    def __init__(self):
        super().__init__()

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls()

    @classmethod
    def from_torch(cls, module):
        """The layer that the torch.nn module of the same name is."""
        return cls()

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        return getattr(F, self.kind)(x)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, type(self).__name__)()

    def describe(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    kind = "sigmoid"


class Tanh(Activation):
    kind = "tanh"


class ReLU(Activation):
    kind = "relu"


class GELU(Activation):
    """x·Φ(x) = x/2·(1 + erf(x/√2)), torch.nn.GELU() (the exact form, not the tanh approximation)."""

    kind = "gelu"

    @classmethod
    def from_torch(cls, module):
        return cls(module.approximate)

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate != "none":
            raise SymPropError(f"only the exact GELU (approximate='none') is supported, got {approximate!r}")
        self.approximate = approximate


class Identity(Activation):
    kind = "identity"

    def forward(self, x):
        return F.elementwise_function(x, z)


class Dropout(Activation):
    """torch.nn.Dropout with p = 0.0: the identity, which is what symprop derives; any other p is refused."""

    kind = "dropout"

    def __init__(self, p: float = 0.0):
        super().__init__()
        if p != 0.0:
            raise SymPropError(f"Dropout: p must be 0.0, which is what symprop derives, got {p!r}")
        self.p = p

    @classmethod
    def from_torch(cls, module):
        return cls(module.p)

    def forward(self, x):
        return x

    def torch_twin(self):
        return None  # the identity runs in torch as it is (torch's Dropout() would drop half)


class Softmax(Activation):
    kind = "softmax"

    def __init__(self, dim: int = -1):
        super().__init__()
        if dim not in (-1, 1):
            raise SymPropError(f"{type(self).__name__} acts on the last axis (dim=-1), got dim={dim}")
        self.dim = dim

    @classmethod
    def from_torch(cls, module):
        return cls(-1 if module.dim is None else module.dim)

    def forward(self, x):
        return getattr(F, self.kind)(x, dim=-1 if self.dim == 1 and len(x.shape) == 2 else self.dim)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, type(self).__name__)(dim=self.dim)

    def describe(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class LogSoftmax(Softmax):
    kind = "log_softmax"


class Elementwise(Activation):
    """A custom activation: any expression in z, applied elementwise (a SymPy expression or a string, read
    against the same allow-list either way)."""

    kind, toml_keys = "elementwise", ("expr",)

    def __init__(self, expr):
        super().__init__()
        self.expr = parse(expr if isinstance(expr, str) else _text(expr), ("z",))

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(table.string("expr"))

    from_torch = None  # no torch.nn module is one (torch runs its forward through torch_eval)

    def forward(self, x):
        return F.elementwise_function(x, self.expr)

    def torch_twin(self):
        return None  # forward runs in torch itself, through declare.torch_eval.to_torch

    def describe(self) -> str:
        return f"Elementwise({sp.sstr(self.expr)!r})"


def _text(expr) -> str:
    if not isinstance(expr, sp.Basic):
        raise SymPropError(f"expected an expression (a string or a SymPy expression), got {type(expr).__name__}")
    return sp.sstr(expr)


ACTIVATION_LAYERS = (Sigmoid, Tanh, ReLU, GELU, Identity, Dropout, Softmax, LogSoftmax, Elementwise)
