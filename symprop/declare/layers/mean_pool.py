"""MeanPool: the mean over the sequence axis, (batch, sequence, width) -> (batch, width)."""

from __future__ import annotations

from ...graph.nn import mean_over
from ..module import Module
from ..options import Table
from ..tensor import SymbolicTensor, shape_text
from ..trace import fail, running


class MeanPool(Module):
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
