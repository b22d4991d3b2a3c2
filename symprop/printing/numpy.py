"""The NumPy backend: SymPy's NumPyPrinter, plus symprop's functions and statements."""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .statements import StatementPrinter


class NumPyBackendPrinter(StatementPrinter, NumPyPrinter):
    backend = "numpy"
    clamp_function = "numpy.clip"

    def in_place_call(self, function, array, *more):
        return f"{self._module_format('numpy.' + function)}({', '.join((array, *more))}, out={array})"

    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    # -- SymPy's functions (the ops' own are spelled by their ops) ----------------------
    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        if at_zero == 0:  # the step as a 0/1 array of the inputs' dtype: cheaper than np.heaviside
            return self.in_dtype(f"({self._print(u)} > 0)")
        return f"{self._module_format('numpy.heaviside')}({self._print(u)}, {self._print(at_zero)})"

    def _print_Piecewise(self, expr):
        arithmetic = self.branchless(expr)
        if arithmetic is not None:
            return arithmetic
        # a mask of numbers, in the arrays' dtype: np.select's ints and nan would make float64
        pieces = expr.args
        if len(pieces) == 2 and pieces[1].cond == sp.true:  # one condition: np.where, a third of np.select's time
            (value, condition), (otherwise, _) = pieces
            text = f"{self._module_format('numpy.where')}({self._print(condition)}, {self._print(value)}, " \
                   f"{self._print(otherwise)})"
        else:
            text = super()._print_Piecewise(expr)
        return self.in_dtype(text) if all(value.is_Number for value, _ in expr.args) else text

    def _print_And(self, expr):
        return self._nested_logical("numpy.logical_and", expr.args)

    def _print_Or(self, expr):
        return self._nested_logical("numpy.logical_or", expr.args)

    def _nested_logical(self, function: str, args) -> str:
        # pairwise, so that masks of different shapes broadcast (SymPy's logical_and.reduce stacks them)
        text = self._print(args[-1])
        for arg in reversed(args[:-1]):
            text = f"{self._module_format(function)}({self._print(arg)}, {text})"
        return text

    def in_dtype(self, text):
        return f"{text}.astype({self.dtype_text})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"{self._module_format('numpy.sqrt')}({self._print(base)})"
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    # -- statements --------------------------------------------------------------
    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    def broadcast(self, text, shape, keep_dtype=False):
        as_array = text if keep_dtype else f"{self._module_format('numpy.asarray')}({text}, dtype={self.dtype_text})"
        return f"{self._module_format('numpy.broadcast_to')}({as_array}, {self.shape_text(shape)}).copy()"

    def new_array(self, shape, of, zeros=False):
        dtype = f"{self._module_format('numpy.result_type')}({', '.join(of)})" if len(of) > 1 else f"{of[0]}.dtype"
        return f"{self._module_format('numpy.zeros' if zeros else 'numpy.empty')}({shape}, {dtype})"
