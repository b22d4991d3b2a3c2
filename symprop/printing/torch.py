"""The torch backend: SymPy's TorchPrinter, plus symprop's functions and statements.

The printed code uses no autograd and runs on whatever device its tensors are on.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from .statements import StatementPrinter


class TorchBackendPrinter(StatementPrinter, TorchPrinter):
    array_module = "torch"
    in_place = True
    free_dead = True

    def __init__(self):
        super().__init__({"fully_qualified_modules": True})

    def _call(self, fn, *args):
        return f"{self._module_format(fn)}({', '.join(args)})"

    # -- functions ---------------------------------------------------------------
    def _print_sigmoid(self, expr):
        return self._call("torch.sigmoid", self._print(expr.args[0]))

    def _print_softplus(self, expr):
        # softplus(u) = −log σ(−u); torch's logsigmoid is exact where F.softplus switches to u at 20
        return "(-" + self._call("torch.nn.functional.logsigmoid", self._print(-expr.args[0])) + ")"

    def _print_xlogy(self, expr):
        return self._call("torch.xlogy", *(self._print(a) for a in expr.args))

    def mask(self, u):
        # relu's output h is ≥ 0, so H(h) = sign(h): one float kernel, where torch's bool compare and
        # bool-times-float multiply take some 8x as long on CPU
        return self._call("torch.sign", self._print(u)) if u in self._relu_outputs() else super().mask(u)

    def _relu_outputs(self):
        return {sp.Symbol(s.name, real=True) for s in self._program.statements
                if isinstance(s.expr, sp.Max) and len(s.expr.args) == 2 and 0 in s.expr.args}

    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        text = self._print(u)
        if at_zero == 0 and u in self._relu_outputs():
            return self._call("torch.sign", text)
        return f"({text} > 0).to(x.dtype)" if at_zero == 0 else self._call(
            "torch.heaviside", text, self._call("torch.full_like", text, self._print(at_zero)))

    def _print_Max(self, expr):
        return self._minmax("torch.maximum", "min", expr)

    def _print_Min(self, expr):
        return self._minmax("torch.minimum", "max", expr)

    def _minmax(self, fn, clamp_side, expr):
        numbers = [a for a in expr.args if a.is_Number]
        others = [a for a in expr.args if not a.is_Number]
        text = self._print(others[-1])
        for arg in reversed(others[:-1]):
            text = self._call(fn, self._print(arg), text)
        for number in numbers:  # a number bound is a clamp: max(z, 0) = clamp(z, min=0)
            text = self._call("torch.clamp", text, f"{clamp_side}={self._print(number)}")
        return text

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return self._call("torch.sqrt", self._print(base))
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    # -- statements --------------------------------------------------------------
    def reduce(self, kind, text, axes, keepdims):
        fn = "torch.sum" if kind == "sum" else "torch.amax"
        dim = axes[0] if len(axes) == 1 else tuple(axes)
        return self._call(fn, text, f"dim={dim}", *(["keepdim=True"] if keepdims else []))

    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    def onehot(self, text, classes):
        return f"{self._call('torch.nn.functional.one_hot', text, str(classes))}.to(x.dtype)"

    def broadcast(self, text, shape):
        return (f"{self._module_format('torch.as_tensor')}({text}, dtype=x.dtype, device=x.device)"
                f".expand({self.shape_text(shape)}).clone()")
