"""expm1: e^z − 1, exact for small z; torch.expm1 (NumPy's expm1). Its derivative e^z is SymPy's."""

from __future__ import annotations

import math

from sympy.codegen.cfunctions import expm1

from .pointwise import pointwise
from .registry import TorchNames

pointwise("expm1", sympy=expm1, python=math.expm1,
          torch=TorchNames(("torch.expm1",), ("expm1",), "", ("aten.expm1.default",)),
          spell={"numpy": "numpy.expm1", "torch": "torch.expm1"})
