"""Plain-text closed forms, for the docstrings of generated modules."""

from __future__ import annotations

from sympy.printing.str import StrPrinter

from .statements import StatementPrinter


class TextPrinter(StatementPrinter, StrPrinter):
    backend = "text"
    numbers_as_floats, code_numbers = False, True
    code = False

    def _print_Heaviside(self, expr):
        u = self._print(expr.args[0])  # the step: 1 where positive, else 0 (or 1 at 0, as H(u, 1))
        return f"H({u}, 1)" if expr.args[1] == 1 else f"H({u})"

    def reshape(self, text, shape):
        return f"{text}.reshape{self.shape_text(shape)}"

    def broadcast(self, text, shape, keep_dtype=False):
        return f"{text} (broadcast to {self.shape_text(shape)})"
