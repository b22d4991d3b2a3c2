"""The NumPy backend: SymPy's NumPyPrinter, plus symprop's functions and statements."""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .statements import StatementPrinter


class NumPyBackendPrinter(StatementPrinter, NumPyPrinter):
    array_module = "np"
    in_place = True
    free_dead = True

    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    # -- functions ---------------------------------------------------------------
    def _print_sigmoid(self, expr):
        # e^min(u,0) / (1 + e^-|u|): exact on both sides, and no exp ever overflows
        u = self._print(expr.args[0])
        exp, minimum, absolute = (self._module_format(f"numpy.{f}") for f in ("exp", "minimum", "abs"))
        return f"({exp}({minimum}({u}, 0))/(1 + {exp}(-{absolute}({u}))))"

    def _print_softplus(self, expr):
        return f"{self._module_format('numpy.logaddexp')}(0, {self._print(expr.args[0])})"

    def _print_xlogy(self, expr):
        a, b = (self._print(arg) for arg in expr.args)
        where, log = self._module_format("numpy.where"), self._module_format("numpy.log")
        return f"({self.parenthesize(expr.args[0], 50)}*{log}({where}({a} == 0, 1, {b})))"

    def _print_erf(self, expr):
        from ..errors import SymPropError

        raise SymPropError("erf has no NumPy form yet (NumPy has no erf); derive with --target torch")

    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        if at_zero == 0:  # the step as a 0/1 array of the inputs' dtype: cheaper than np.heaviside
            return f"({self._print(u)} > 0).astype(x.dtype)"
        return f"{self._module_format('numpy.heaviside')}({self._print(u)}, {self._print(at_zero)})"

    def _print_Max(self, expr):
        return self._nested("numpy.maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested("numpy.minimum", expr.args)

    def _nested(self, fn, args):
        text = self._print(args[-1])
        for arg in reversed(args[:-1]):
            text = f"{self._module_format(fn)}({self._print(arg)}, {text})"
        return text

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"{self._module_format('numpy.sqrt')}({self._print(base)})"
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    # -- statements --------------------------------------------------------------
    def reduce(self, kind, text, axes, keepdims):
        fn = self._module_format("numpy.sum" if kind == "sum" else "numpy.max")
        axis = axes[0] if len(axes) == 1 else tuple(axes)
        return f"{fn}({text}, axis={axis}{', keepdims=True' if keepdims else ''})"

    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    def onehot(self, text, classes):
        return f"({text}[..., None] == {self._module_format('numpy.arange')}({classes})).astype(x.dtype)"

    def broadcast(self, text, shape):
        return (f"{self._module_format('numpy.broadcast_to')}("
                f"{self._module_format('numpy.asarray')}({text}, dtype=x.dtype), {self.shape_text(shape)}).copy()")
