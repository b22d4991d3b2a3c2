"""xlogy(a, b) = a·log(b), taken as 0 where a = 0 (so 0·log 0 = 0), as torch.xlogy: the KL divergence's terms."""

from __future__ import annotations

import math

import sympy as sp

from ..functions import DefinedFunction
from .pointwise import pointwise
from .registry import TorchNames


class xlogy(DefinedFunction):
    """xlogy(a, b) = a·log(b), taken as 0 where a = 0 (its derivatives are a·log(b)'s, as torch's)."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return a * sp.log(b)

    def _latex(self, printer, exp=None):
        a, b = (printer._print(arg) for arg in self.args)
        text = rf"{a} \log {b}"
        return rf"\left({text}\right)^{{{exp}}}" if exp is not None else text


def _numpy(printer, expr):
    a, b = (printer._print(arg) for arg in expr.args)
    where, log = printer._module_format("numpy.where"), printer._module_format("numpy.log")
    return f"({printer.parenthesize(expr.args[0], 50)}*{log}({where}({a} == 0, 1, {b})))"


pointwise("xlogy", sympy=xlogy, expression_names=(), public=True,
          python=lambda a, b: 0.0 if a == 0 else a * math.log(b),
          torch=TorchNames(("torch.xlogy", "torch.special.xlogy"), ("xlogy",), "", ("aten.xlogy.Tensor",)),
          spell={"numpy": _numpy, "torch": "torch.xlogy"}, domain=(0.0, None), kinks=(0.0,))
