"""elementwise_loss: a custom loss, any expression in y (the output) and t (the target) per element, reduced
(S.ElementwiseLoss("log(cosh(y - t))"), type = "elementwise" in a spec's [loss]); read against the allow-list of
expressions, never run."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_module
from ..declare.parse import parse
from ..declare.torch_eval import to_torch
from ..errors import SymPropError
from .loss import Loss, operands, reduced, same_shape
from .registry import defop


def elementwise_loss(input, target, expr: sp.Expr, reduction="mean"):
    """A custom loss: a SymPy expression in y (the output) and t (the target), per element, then reduced."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        each = torch_module().as_tensor(to_torch(expr, {"y": input, "t": target})).expand_as(input)
        return each.mean() if reduction == "mean" else each.sum()
    y, t = operands("elementwise loss", input, target, reduction)
    same_shape("elementwise loss", y, t)
    return reduced(y, expr.xreplace({sp.Symbol("y"): y.expr, sp.Symbol("t"): t.expr}), reduction)


class ElementwiseLoss(Loss):
    """A custom loss: any expression in y (the output) and t (the target), per element."""

    kind = "elementwise"
    from_torch = None  # no torch.nn loss is one

    def __init__(self, expr, reduction: str = "mean"):
        super().__init__(reduction)
        text = expr if isinstance(expr, str) else sp.sstr(expr) if isinstance(expr, sp.Basic) else None
        if text is None:
            raise SymPropError(f"expected an expression (a string or a SymPy expression), got {type(expr).__name__}")
        self.expr = parse(text, ("y", "t"))
        if sp.Symbol("y") not in self.expr.free_symbols:
            raise SymPropError(f"loss {text!r} does not depend on y, so it has no gradient")

    def forward(self, y, t):
        return elementwise_loss(y, t, self.expr, self.reduction)

    toml_keys = ("expr",)

    @classmethod
    def from_toml(cls, table):
        return cls(table.string("expr"), reduction=table.data.get("reduction", "mean"))

    @property
    def element(self):
        return sp.latex(self.expr.subs({sp.Symbol("y"): sp.Symbol("Y"), sp.Symbol("t"): sp.Symbol("T")}))

    def torch_twin(self):
        return None  # forward runs in torch itself

    def describe(self) -> str:
        reduction = "" if self.reduction == "mean" else f", reduction={self.reduction!r}"
        return f"ElementwiseLoss({sp.sstr(self.expr)!r}{reduction})"


defop("elementwise_loss", layer=ElementwiseLoss, functional=elementwise_loss)
