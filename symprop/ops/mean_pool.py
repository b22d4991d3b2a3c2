"""MeanPool: the mean over the sequence axis, (batch, sequence, width) -> (batch, width): a sum, divided."""

from __future__ import annotations

from ..declare.module import Module
from ..declare.options import Table
from ..declare.tensor import SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..graph import Graph, Value
from ..notes import define
from .registry import defop
from .sum import reduce_sum

MEAN_OVER = define("mean over the sequence",
                   "{0} is the mean over the sequence's {1} positions: its sum over them / {1}",
                   r"${0}$ is the mean over the sequence's ${1}$ positions: its sum over them divided by ${1}$ (the "
                   r"${1}$ in its rows, and in its cotangent's).")


def mean_over(g: Graph, value: Value, axis: int, name: str) -> Value:
    """The mean over one axis, which is dropped: (batch, sequence, width) -> (batch, width) for axis 1."""
    kept = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    total = reduce_sum(g, value, kept, stem=f"pool{name[1:]}" if name[0] == "h" else f"sum_{name}")
    dropped = tuple(d for a, d in enumerate(value.shape) if a != axis)
    summed = g.apply("rearrange", (total,), stem=f"sum{name[1:]}" if name[0] == "h" else f"sum_{name}", shape=dropped,
                     split=total.shape, perm=tuple(range(len(kept))))
    g.note(MEAN_OVER, name, str(value.shape[axis]))
    return g.label(Value(summed.expr / value.shape[axis], dropped), name)


class MeanPool(Module):
    """The mean over the sequence axis (torch: x.mean(dim=1))."""

    kind, toml_keys = "mean_pool", ()

    def __init__(self):
        super().__init__()

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls()

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        if not isinstance(x, SymbolicTensor):
            return x.mean(dim=1)  # in torch
        if x.ndim != 3:
            raise fail(f"MeanPool needs inputs of shape (batch, sequence, width), got {shape_text(x.shape)}: "
                       "set sequence = S in the model, or pool only once")
        trace = running()
        return SymbolicTensor(mean_over(trace.graph, x.value, 1, trace.stem("h")))

    def describe(self) -> str:
        return "MeanPool()"


defop("mean_pool", layer=MeanPool)
