"""log1p: log(1 + z), exact for small z; torch.log1p (NumPy's log1p). Its derivative 1/(1 + z) is SymPy's."""

from __future__ import annotations

import math

from sympy.codegen.cfunctions import log1p

from .pointwise import pointwise
from .registry import TorchNames

pointwise("log1p", sympy=log1p, python=math.log1p, domain=(-1.0, None),
          torch=TorchNames(("torch.log1p",), ("log1p",), "", ("aten.log1p.default",)),
          spell={"numpy": "numpy.log1p", "torch": "torch.log1p"})
