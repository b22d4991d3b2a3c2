"""leaky_relu: z where z > 0, else slope·z; F.leaky_relu, nn.LeakyReLU. At 0 its derivative is the slope, as
torch's."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, number, pointwise
from .registry import Param, TorchNames

pointwise(
    "leaky_relu", lambda z, negative_slope: sp.Piecewise((z, z > 0), (negative_slope * z, True)),
    params=(Param("negative_slope", 0.01, number), INPLACE), activation=True, latex=r"\operatorname{LeakyReLU}",
    torch=TorchNames(("torch.nn.functional.leaky_relu",), (), "LeakyReLU", ("aten.leaky_relu.default",)),
    kinks=(0.0,))
