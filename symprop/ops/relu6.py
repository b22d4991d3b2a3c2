"""relu6: z held within [0, 6]; F.relu6, nn.ReLU6 (MobileNet's). At 0 and 6 its derivative is 0, as torch's."""

from __future__ import annotations

import sympy as sp

from .pointwise import INPLACE, pointwise
from .registry import TorchNames

pointwise(
    "relu6", lambda z: sp.Piecewise((0, z <= 0), (6, z >= 6), (z, True)), params=(INPLACE,), activation=True,
    latex=r"\operatorname{ReLU6}", kinks=(0.0, 6.0),
    torch=TorchNames(("torch.nn.functional.relu6",), (), "ReLU6", ("aten.relu6.default",)))
