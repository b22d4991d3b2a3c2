"""softmax and log_softmax over the last axis: torch.softmax and torch.log_softmax, nn.Softmax and nn.LogSoftmax.

Built from max, exp, sum and log: log_softmax(z) = z − m − log Σ_k exp(z_k − m), m = max_k z_k. The shift by m keeps
every exp finite; it cancels from the value, so no gradient flows through it (reductions.py)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.tensor import SymbolicTensor
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..graph.reduce import reduce_max, reduce_sum
from ..notes import define
from .registry import TorchNames, defop

MAX_SHIFT = define(
    "max shift", "the code shifts the row maximum out before exp (it cancels from the softmax)",
    r"The code shifts each row's maximum out before $\exp$ (the log-sum-exp), so that no $\exp$ overflows; the "
    r"softmax, and so every formula here, is unchanged by it.")


def log_softmax_graph(g: Graph, value: Value, softmax_name: str, suffix: str = "") -> Value:
    """z − logsumexp(z), with the max shifted out: m = max_k z_k, s = Σ_k exp(z_k − m); the softmax e/s is labelled
    `softmax_name`."""
    shifted, exps, total = _shifted_exps(g, value, suffix)
    g.label(Value(exps.expr / total.expr, value.shape), softmax_name)
    return Value(shifted.expr - sp.log(total.expr), value.shape)


def softmax_graph(g: Graph, value: Value, name: str, suffix: str = "") -> Value:
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis."""
    if g.book:
        g.note(MAX_SHIFT)
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


def _last_axis(input, dim, where: str) -> Value:
    value = symbolic(input, where)
    if dim not in (-1, len(value.shape) - 1):
        raise fail(f"{where} acts on the last axis (dim=-1), got dim={dim}")
    return value


def softmax(input, dim=-1):
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis, as torch.softmax."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(SOFTMAX.functions[0])(input, dim=dim)
    value, trace = _last_axis(input, dim, "F.softmax"), running()
    name = trace.stem("h")
    log_p = log_softmax_graph(trace.graph, value, name)
    result = trace.graph.label(Value(sp.exp(log_p.expr), value.shape), name)
    trace.graph.made_by[result.expr] = "softmax"
    return SymbolicTensor(result)


def log_softmax(input, dim=-1):
    """z − log Σ_k e^(z_k) over the last axis, as torch.log_softmax."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(LOG_SOFTMAX.functions[0])(input, dim=dim)
    value, trace = _last_axis(input, dim, "F.log_softmax"), running()
    log_p = log_softmax_graph(trace.graph, value, trace.stem("p"))
    return SymbolicTensor(trace.graph.label(log_p, trace.stem("h")))


class Softmax(Module):
    """torch.nn.Softmax over the last axis."""

    kind, toml_keys = "softmax", ()
    function = staticmethod(softmax)

    def __init__(self, dim: int = -1):
        super().__init__()
        if dim not in (-1, 1):
            raise SymPropError(f"{type(self).__name__} acts on the last axis (dim=-1), got dim={dim}")
        self.dim = dim

    @classmethod
    def from_toml(cls, table, width: int):
        return cls()

    @classmethod
    def from_torch(cls, module):
        return cls(-1 if module.dim is None else module.dim)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        return self.function(x, dim=-1 if self.dim == 1 and len(x.shape) == 2 else self.dim)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, type(self).__name__)(dim=self.dim)

    def describe(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class LogSoftmax(Softmax):
    """torch.nn.LogSoftmax over the last axis."""

    kind = "log_softmax"
    function = staticmethod(log_softmax)


SOFTMAX = TorchNames(("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"), ("softmax",),
                     "Softmax", ("aten._softmax.default", "aten.softmax.int"))
LOG_SOFTMAX = TorchNames(("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.special.log_softmax"),
                         ("log_softmax",), "LogSoftmax", ("aten._log_softmax.default", "aten.log_softmax.int"))
defop("softmax", torch=SOFTMAX, layer=Softmax, functional=softmax)
defop("log_softmax", torch=LOG_SOFTMAX, layer=LogSoftmax, functional=log_softmax)
