"""The elementwise functions of expressions and of symprop's namespace (symprop.exp, "exp(z)" in a spec), one row each:
SymPy's function, torch's names and, where SymPy's printers need help, how each backend prints it."""

from __future__ import annotations

import math

import sympy as sp

from ..functions import DefinedFunction
from .pointwise import pointwise
from .registry import TorchNames


def _torch_names(name: str, method: bool = True) -> TorchNames:
    return TorchNames((f"torch.{name}",), (name,) if method else (), "", (f"aten.{name}.default",))


def _nested(function: str):
    """max(a, b, c) as function(a, function(b, c)): NumPy's maximum takes two arrays."""
    def spell(printer, expr):
        text = printer._print(expr.args[-1])
        for arg in reversed(expr.args[:-1]):
            text = f"{printer._module_format(function)}({printer._print(arg)}, {text})"
        return text

    return spell


def _clamped(function: str, side: str):
    """torch: max(z, 0) as clamp(z, min=0), a number bound as a clamp; the rest nested."""
    def spell(printer, expr):
        numbers = [a for a in expr.args if a.is_Number]
        others = [a for a in expr.args if not a.is_Number]
        text = printer._print(others[-1])
        for arg in reversed(others[:-1]):
            text = f"{printer._module_format(function)}({printer._print(arg)}, {text})"
        for number in numbers:
            text = f"{printer._module_format('torch.clamp')}({text}, {side}={printer._print(number)})"
        return text

    return spell


# name, SymPy's function, on Python floats, and what a test must know: its domain and kinks; cost: passes over the
# array against a product (float32, 65k values, this machine)
for _name, _function, _python, _facts in (
        ("exp", sp.exp, math.exp, {"in_place": {"numpy": ("exp",), "torch": ("exp",)},
                                   "cost": {"numpy": 6, "torch": 6}}),
        ("log", sp.log, math.log, {"in_place": {"numpy": ("log",), "torch": ("log",)}, "domain": (0.0, None),
                                    "cost": {"numpy": 5, "torch": 8}}),
        ("sqrt", sp.sqrt, math.sqrt, {"domain": (0.0, None)}),
        ("abs", sp.Abs, abs, {"finite": True, "expression_names": ("Abs", "abs"), "kinks": (0.0,)}),
        ("sin", sp.sin, math.sin, {"finite": True}),
        ("cos", sp.cos, math.cos, {"finite": True}),
        ("tan", sp.tan, math.tan, {"domain": (-1.5, 1.5)}),
        ("atan", sp.atan, math.atan, {"finite": True}),
        ("sinh", sp.sinh, math.sinh, {}),
        ("cosh", sp.cosh, math.cosh, {}),
        ("asinh", sp.asinh, math.asinh, {"finite": True})):
    pointwise(_name, sympy=_function, python=_python, torch=_torch_names(_name), **_facts)

# In expressions ("Max(z, 0)", as a custom activation writes relu), SymPy's own Max and Min: at a tie the derivative
# is that of relu and hardtanh, 0 (simplify.kinks).
def _torch(name: str):
    """torch's binary function `name`, on tensors, for the torch reference of an expression."""
    def function(a, b):
        import torch

        return getattr(torch, name)(a, b)

    return function


pointwise("Max", sympy=sp.Max, python=max, expression_names=("Max", "max"), public=False, reference=_torch("maximum"),
          spell={"numpy": _nested("numpy.maximum"), "torch": _clamped("torch.maximum", "min")},
          in_place={"numpy": ("maximum", "{}"), "torch": ("clamp", "min={}")}, kinks=(0.0,), finite=True)
pointwise("Min", sympy=sp.Min, python=min, expression_names=("Min", "min"), public=False, reference=_torch("minimum"),
          spell={"numpy": _nested("numpy.minimum"), "torch": _clamped("torch.minimum", "max")}, kinks=(0.0,),
          finite=True)


class maximum(DefinedFunction):
    """torch.maximum(a, b): defined as (a + b + |a − b|)/2, whose derivative splits a tie in halves, as torch's does;
    printed as the library's maximum."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return (a + b + sp.Abs(a - b)) / 2

    def _latex(self, printer, exp=None):
        text = rf"\max\left({printer._print(self.args[0])}, {printer._print(self.args[1])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"


class minimum(DefinedFunction):
    """torch.minimum(a, b): (a + b − |a − b|)/2, a tie split in halves, as torch's."""

    nargs = 2

    @staticmethod
    def definition(a, b):
        return (a + b - sp.Abs(a - b)) / 2

    def _latex(self, printer, exp=None):
        text = rf"\min\left({printer._print(self.args[0])}, {printer._print(self.args[1])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"


pointwise("maximum", sympy=maximum, python=max, expression_names=(), public=True, torch=_torch_names("maximum"),
          spell={"numpy": _nested("numpy.maximum"), "torch": _clamped("torch.maximum", "min"), "mathml": "max"},
          kinks=(0.0,))
pointwise("minimum", sympy=minimum, python=min, expression_names=(), public=True, torch=_torch_names("minimum"),
          spell={"numpy": _nested("numpy.minimum"), "torch": _clamped("torch.minimum", "max"), "mathml": "min"},
          kinks=(0.0,))
