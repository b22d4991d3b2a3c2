"""elu: z where z > 0, else α·(e^z − 1); F.elu, nn.ELU. At 0 its derivative is α, as torch's. ATen's elu also scales
(SELU's and CELU's: scale·z, or scale·α·(e^(input_scale·z) − 1))."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved
from ..declare.tensor import elementwise
from .pointwise import INPLACE, number, pointwise
from .registry import Param, TorchNames


def _aten(input, alpha=1.0, scale=1.0, input_scale=1.0):
    """aten.elu, as F.selu and F.celu lower to it."""
    input = resolved(input)
    if in_torch(input):
        import torch

        return torch.ops.aten.elu.default(input, alpha, scale, input_scale)
    if scale == 1 and input_scale == 1:
        return ELU.apply(input, {"alpha": alpha})
    return elementwise(lambda z: sp.Float(scale) * sp.Piecewise(
        (z, z > 0), (sp.Float(alpha) * (sp.exp(sp.Float(input_scale) * z) - 1), True)), (input,), "elu")


ELU = pointwise(
    "elu", lambda z, alpha: sp.Piecewise((z, z > 0), (alpha * (sp.exp(z) - 1), True)),
    params=(Param("alpha", 1.0, number), INPLACE), activation=True, latex=r"\operatorname{ELU}",
    torch=TorchNames(("torch.nn.functional.elu",), (), "ELU", ("aten.elu.default",)), kinks=(0.0,))
ELU.front = {"aten.elu.default": _aten}
