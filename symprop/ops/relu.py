"""relu: max(z, 0); torch.relu, nn.ReLU. Its derivative at 0 is 0, as torch's (simplify.kinks)."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, pointwise
from .registry import TorchNames

pointwise(
    "relu", lambda z: sp.Max(z, 0), params=(INPLACE,), activation=True, latex=r"\operatorname{ReLU}",
    torch=TorchNames(("torch.relu", "torch.nn.functional.relu"), ("relu",), "ReLU", ("aten.relu.default",)),
    kinks=(0.0,))
