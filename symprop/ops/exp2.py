"""exp2: 2^z; torch.exp2 (NumPy's exp2). Its derivative log(2)·2^z is SymPy's.

It is also how the torch backend computes e^u, as 2^(u·log₂e), where u has a number of its own for log₂e to fold
into: torch's exp (and erf) go through MKL's vector math library, which takes a generic path on CPUs other than
Intel's, where exp2 does not. On a 2-core AMD VM torch.exp2 cost 11–16 µs on 65k floats where torch.exp cost 30–39
(float32; 37 against 131 in float64); on a 2-core Intel Xeon VM, 12.6 against 10.7. Its rounding of u·log₂e adds
about |u| ulps to e^u's relative error: 5e-14 at most in float64, 4e-6 in float32 (torch's exp: 6e-8), over all of
e^u's finite range; and the last few u below float64's overflow bound 709.78 overflow (u·log₂e rounds to 1024), where
torch's exp is 1.8e308.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import exp2

from ..plan.uses import Uses
from .pointwise import pointwise
from .registry import TorchNames, spelling_rule

# symprop.exp2 and torch.exp2, read from torch; not a name of the expression language (2**z is), whose numbers
# SymPy would evaluate exactly (exp2(1e300))
pointwise("exp2", sympy=exp2, python=lambda u: 2.0**u, expression_names=(), public=True,
          torch=TorchNames(("torch.exp2",), ("exp2",), "", ("aten.exp2.default",)),
          spell={"numpy": "numpy.exp2", "torch": "torch.exp2"},
          in_place={"numpy": ("exp2",), "torch": ("exp2",)}, cost={"numpy": 3, "torch": 2.5})

THROUGH_EXP2 = ("torch",)  # the backends whose exp is slower than a product and an exp2


@spelling_rule
def exp_through_exp2(uses: Uses, shapes: dict, backend: str) -> Uses:
    """Every e^u of the code whose u is a number times a product as 2^(u/log 2) (u/log 2 exact: the printers round its
    number once, so log₂e costs no pass: GELU's e^(−z²/2) is 2^(−0.72·z²)). One value alone keeps e^u (a softmax's
    e^(log p)): its product by log₂e would be a pass of its own, which costs about what exp2 saves on AMD's CPUs and
    more than exp's fast path on Intel's. A sum keeps e^u: its terms would each be scaled and rounded apart, and where
    they cancel (a bias of 1e6 and an input of −1e6) the rounding of each would be e^u's error."""
    if backend not in THROUGH_EXP2:
        return uses

    def base_two(u):
        return exp2(u / sp.log(2)) if u.is_Mul and u.as_coeff_Mul()[0] != 1 else sp.exp(u)

    for statement in uses.statements + uses.outputs:
        expr, operands = (e.replace(sp.exp, base_two) if e is not None else None
                          for e in (statement.expr, sp.Tuple(*statement.operands)))
        if expr != statement.expr or tuple(operands) != tuple(statement.operands):
            statement.expr, statement.operands = expr, tuple(operands)
            uses.rewrite(statement, {})
    return uses
