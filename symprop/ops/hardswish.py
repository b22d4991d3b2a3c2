"""hardswish: z·min(max(z + 3, 0), 6)/6; F.hardswish, nn.Hardswish. At ±3 its derivative is the outer pieces', 0 and
1, as torch's."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, pointwise
from .registry import TorchNames

pointwise(
    "hardswish", lambda z: sp.Piecewise((0, z <= -3), (z * (z + 3) / 6, z < 3), (z, True)), params=(INPLACE,),
    activation=True, latex=r"\operatorname{hardswish}",
    torch=TorchNames(("torch.nn.functional.hardswish",), (), "Hardswish", ("aten.hardswish.default",)),
    kinks=(-3.0, 3.0))
