"""hardsigmoid: min(max(z/6 + 1/2, 0), 1); F.hardsigmoid, nn.Hardsigmoid. At ±3 its derivative is 0, as torch's."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, pointwise
from .registry import TorchNames

pointwise(
    "hardsigmoid", lambda z: sp.Piecewise((0, z <= -3), (1, z >= 3), (z / 6 + sp.Rational(1, 2), True)),
    params=(INPLACE,), activation=True, latex=r"\operatorname{hardsigmoid}",
    torch=TorchNames(("torch.nn.functional.hardsigmoid",), (), "Hardsigmoid", ("aten.hardsigmoid.default",)),
    kinks=(-3.0, 3.0))
