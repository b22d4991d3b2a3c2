"""elementwise: a custom activation, any expression in z applied to every entry (S.Elementwise("z*sigmoid(z)"), type
= "elementwise" in a spec, F.elementwise_function); read against the allow-list of expressions, never run."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic
from ..declare.module import Module
from ..declare.options import Table
from ..declare.parse import parse
from ..declare.tensor import SymbolicTensor
from ..declare.torch_eval import to_torch
from ..declare.trace import running
from ..errors import SymPropError
from .registry import defop


def elementwise_function(input, expr: sp.Expr):
    """A custom activation: a SymPy expression in z, applied to every entry."""
    input = resolved(input)
    if in_torch(input):
        return to_torch(expr, {"z": input}) + 0 * input  # a constant activation broadcasts
    trace = running()
    return SymbolicTensor(trace.graph.activate(symbolic(input, "activation"), expr, trace.stem("h"), "f"))


class Elementwise(Module):
    """A custom activation: any expression in z, applied elementwise (a SymPy expression or a string, read against
    the same allow-list either way)."""

    kind, toml_keys = "elementwise", ("expr",)
    from_torch = None  # no torch.nn module is one (torch runs its forward through torch_eval)

    def __init__(self, expr):
        super().__init__()
        self.expr = parse(expr if isinstance(expr, str) else _text(expr), ("z",))

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(table.string("expr"))

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        return elementwise_function(x, self.expr)

    def torch_twin(self):
        return None  # forward runs in torch itself, through declare.torch_eval.to_torch

    def describe(self) -> str:
        return f"Elementwise({sp.sstr(self.expr)!r})"


def _text(expr) -> str:
    if not isinstance(expr, sp.Basic):
        raise SymPropError(f"expected an expression (a string or a SymPy expression), got {type(expr).__name__}")
    return sp.sstr(expr)


defop("elementwise", layer=Elementwise, functional=elementwise_function)
