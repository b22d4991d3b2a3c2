"""sign: 1, 0 or −1 as z is positive, zero or negative; torch.sign. Its derivative is 0 (torch's, everywhere)."""

from __future__ import annotations

import sympy as sp

from .pointwise import pointwise
from .registry import TorchNames

pointwise("sign", lambda z: sp.Piecewise((1, z > 0), (-1, z < 0), (0, True)), kinks=(0.0,), activation=True,
          torch=TorchNames(("torch.sign",), ("sign",), "", ("aten.sign.default",)))
