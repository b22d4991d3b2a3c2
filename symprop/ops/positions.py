"""PositionalEncoding: a table of shape (sequence, width) added to what flows in, each position its own row:
learned (a Parameter), or the sinusoidal encoding of "Attention Is All You Need" (a constant)."""

from __future__ import annotations

from ..declare.module import Module
from ..declare.options import Table, flag, positive
from ..declare.tensor import Parameter, SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from .registry import defop
from .sinusoid import sinusoid_table


def sinusoid(length: int, width: int, like):
    """The sinusoidal table in torch, for a torch run: sin and cos of position / 10000^(2i/width)."""
    import math

    import torch

    position = torch.arange(length, dtype=like.dtype)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=like.dtype) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=like.dtype)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


class PositionalEncoding(Module):
    kind, toml_keys = "positions", ("learned",)

    def __init__(self, sequence: int, d_model: int, learned: bool = True):
        super().__init__()
        self.sequence, self.d_model = positive(sequence, "sequence"), positive(d_model, "d_model")
        self.learned = flag(learned, "learned")
        if learned:
            self.weight = Parameter((sequence, d_model), init=("normal", 0.02))
        elif d_model % 2:
            raise SymPropError(f"the sinusoidal encoding pairs sin and cos: d_model must be even, got {d_model}")

    @classmethod
    def from_toml(cls, table: Table, width: int):
        if table.sequence is None:
            raise SymPropError("positions need the sequence length: set sequence = S in the spec")
        return cls(table.sequence, width, table.get("learned", flag, True))

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        if not isinstance(x, SymbolicTensor):  # in torch
            return x + (self.weight if self.learned else sinusoid(self.sequence, self.d_model, x))
        if x.shape[1:] != (self.sequence, self.d_model):
            raise fail(f"PositionalEncoding({self.sequence}, {self.d_model}) adds to (batch, {self.sequence}, "
                       f"{self.d_model}), got {shape_text(x.shape)}")
        if self.learned:
            return x + self.weight
        graph = running().graph
        table = sinusoid_table(graph, self.sequence, self.d_model, stem="positions")
        return x + SymbolicTensor(table)

    def symbol_stem(self, name: str, tag: str) -> str:
        return "P" + tag

    def describe(self) -> str:
        return f"PositionalEncoding({self.sequence}, {self.d_model}{'' if self.learned else ', learned=False'})"


defop("positions", layer=PositionalEncoding, init_doc="PositionalEncoding N(0, 0.02²) where learned")
