"""exp2: 2^z; torch.exp2 (NumPy's exp2). Its derivative log(2)·2^z is SymPy's.

It is also how the torch backend computes e^u, as 2^(u·log₂e): torch's exp (and erf) go through MKL's vector math
library, which takes a generic path on CPUs other than Intel's, where exp2 does not. On this project's 2-core AMD VM,
torch.exp2 costs 11–16 µs on 65k floats where torch.exp costs 30–39 (float32; 37 against 131 in float64), and the
product by log₂e mostly folds into a number that scales u already (GELU's e^(−z²/2), a softmax's e^(log p)). Its
rounding adds about |u| ulps to e^u's relative error: 1e-13 at most in float64, where e^u is finite.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import exp2

from ..plan.uses import Uses
from .pointwise import pointwise
from .registry import TorchNames, plan_rule

# symprop.exp2 and torch.exp2, read from torch; not a name of the expression language (2**z is), whose numbers
# SymPy would evaluate exactly (exp2(1e300))
pointwise("exp2", sympy=exp2, python=lambda u: 2.0**u, expression_names=(), public=True,
          torch=TorchNames(("torch.exp2",), ("exp2",), "", ("aten.exp2.default",)),
          spell={"numpy": "numpy.exp2", "torch": "torch.exp2"},
          in_place={"numpy": ("exp2",), "torch": ("exp2",)}, cost={"numpy": 3, "torch": 2.5})

THROUGH_EXP2 = ("torch",)  # the backends whose exp is slower than a product and an exp2


@plan_rule
def exp_through_exp2(uses: Uses, shapes: dict, backend: str) -> Uses:
    """Every e^u of the code as 2^(u/log 2) (u/log 2 exact: the printers round its number once)."""
    if backend not in THROUGH_EXP2:
        return uses
    for statement in uses.statements + uses.outputs:
        expr, operands = (e.replace(sp.exp, lambda u: exp2(u / sp.log(2))) if e is not None else None
                          for e in (statement.expr, sp.Tuple(*statement.operands)))
        if expr != statement.expr or tuple(operands) != tuple(statement.operands):
            statement.expr, statement.operands = expr, tuple(operands)
            uses.rewrite(statement, {})
    return uses

