"""tanh, elementwise; torch.tanh, nn.Tanh. Its derivative 1 − tanh² reads its own output, as books write it."""

from __future__ import annotations

import math

import sympy as sp

from .pointwise import pointwise
from .registry import TorchNames

pointwise(
    "tanh", python=math.tanh, sympy=sp.tanh, activation=True, latex=r"\tanh",
    torch=TorchNames(("torch.tanh", "torch.nn.functional.tanh"), ("tanh",), "Tanh", ("aten.tanh.default",)),
    in_place={"numpy": ("tanh",), "torch": ("tanh",)}, cost={"numpy": 5, "torch": 17},  # passes, float32, 65k values
    finite=True)
