"""hardtanh: z held within [min_val, max_val]; F.hardtanh, nn.Hardtanh. At the bounds its derivative is 0, as torch's
(clamp's is 1 there)."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, number, pointwise
from .registry import Param, TorchNames

pointwise(
    "hardtanh", lambda z, min_val, max_val: sp.Piecewise((min_val, z <= min_val), (max_val, z >= max_val), (z, True)),
    params=(Param("min_val", -1.0, number), Param("max_val", 1.0, number), INPLACE), activation=True,
    latex=r"\operatorname{hardtanh}", kinks=(-1.0, 1.0),
    torch=TorchNames(("torch.nn.functional.hardtanh",), (), "Hardtanh", ("aten.hardtanh.default",)))
