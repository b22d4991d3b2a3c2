"""elu: z where z > 0, else α·(e^z − 1); F.elu, nn.ELU. At 0 its derivative is α, as torch's."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, number, pointwise
from .registry import Param, TorchNames

pointwise(
    "elu", lambda z, alpha: sp.Piecewise((z, z > 0), (alpha * (sp.exp(z) - 1), True)),
    params=(Param("alpha", 1.0, number), INPLACE), activation=True, latex=r"\operatorname{ELU}",
    torch=TorchNames(("torch.nn.functional.elu",), (), "ELU", ("aten.elu.default",)), kinks=(0.0,))
