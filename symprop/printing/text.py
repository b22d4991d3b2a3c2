"""Plain-text closed forms, for the docstrings of generated modules."""

from __future__ import annotations

from sympy.printing.str import StrPrinter

from .statements import StatementPrinter


class TextPrinter(StatementPrinter, StrPrinter):
    backend, array_module = "text", "einsum"
    numbers_as_floats, code_numbers = False, True
    code = False

    def _print_Heaviside(self, expr):
        u = self._print(expr.args[0])  # the step: 1 where positive, else 0 (or 1 at 0, as H(u, 1))
        return f"H({u}, 1)" if expr.args[1] == 1 else f"H({u})"

    def reduce(self, kind, text, axes, keepdims):
        axis = axes[0] if len(axes) == 1 else tuple(axes)
        return f"{kind}({text}, axis={axis}{', keepdims' if keepdims else ''})"

    def reshape(self, text, shape):
        return f"{text}.reshape{self.shape_text(shape)}"

    def onehot(self, text, classes):
        return f"onehot({text}, {classes})"

    def broadcast(self, text, shape):
        return f"{text} (broadcast to {self.shape_text(shape)})"

    def einsum(self, spec, operands, shapes=None):
        text = super().einsum(spec, operands, shapes)
        return text.replace("einsum.einsum", "einsum")

    def pad(self, tensor, texts, shapes):
        return f"pad({texts[0]}, axis={tensor.axes[0]}, widths={tensor.bounds})"

    def scatter_add(self, tensor, texts, shapes):
        return f"scatter_add({texts[0]}, {texts[1]}, rows={tensor.shape[0]})"

    def concat(self, tensor, texts, shapes):
        return f"concat([{', '.join(texts)}], axis={tensor.axes[0]})"

    def sinusoid(self, length, width):
        return f"sinusoid({length}, {width})"

    def padding_mask(self, text):
        return f"padding_mask({text})"

    def causal_mask(self, size):
        return f"causal_mask({size})"
