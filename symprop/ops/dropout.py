"""dropout at p = 0 (or not training): the identity, which is what symprop derives; F.dropout, nn.Dropout. Any
other p is refused."""

from __future__ import annotations

from ..declare.module import Module
from ..declare.options import Table
from ..declare.trace import fail
from ..errors import SymPropError
from .registry import TorchNames, defop


def dropout(input, p=0.5, training=True, inplace=False):
    """Dropout with p = 0 (or not training) is the identity, which is what symprop derives; any other is refused."""
    if p and training:
        raise fail(f"F.dropout: p must be 0.0 (or training False), which is what symprop derives, got p={p}")
    return input


class Dropout(Module):
    """torch.nn.Dropout with p = 0.0: the identity."""

    kind, toml_keys = "dropout", ()

    def __init__(self, p: float = 0.0):
        super().__init__()
        if p != 0.0:
            raise SymPropError(f"Dropout: p must be 0.0, which is what symprop derives, got {p!r}")
        self.p = p

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls()

    @classmethod
    def from_torch(cls, module):
        if module.training and module.p:  # in eval() mode torch's dropout is the identity
            raise SymPropError(f"Dropout: p={module.p} in training mode; torch.fx derives it at p = 0.0 only (call "
                               ".eval(), or give example_inputs: torch.export takes its masks as inputs)")
        return cls(0.0)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        return x

    def torch_twin(self):
        return None  # the identity runs in torch as it is (torch's Dropout() would drop half)

    def describe(self) -> str:
        return "Dropout()"


FEATURE = ("aten.feature_dropout.default", "aten.feature_dropout_.default")  # nn.Dropout1d/2d: whole channels
defop("dropout", torch=TorchNames(("torch.nn.functional.dropout",), (), "Dropout", ("aten.dropout.default", *FEATURE)),
      layer=Dropout, functional=dropout, front={"aten.dropout.default": dropout, **dict.fromkeys(FEATURE, dropout)})
