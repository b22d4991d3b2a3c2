"""smooth_l1_loss and huber_loss: per element, a square near y = t and a straight line past |y − t| = β (or δ),
reduced; F.smooth_l1_loss, nn.SmoothL1Loss(beta) and F.huber_loss, nn.HuberLoss(delta). Huber's is δ times
smooth L1's with β = δ; torch's β = 0 is the L1 loss."""

from __future__ import annotations

import numbers

import sympy as sp

from ..declare.calls import torch_function
from ..declare.options import Table
from ..declare.trace import fail
from ..errors import SymPropError
from .loss import ATEN_REDUCTIONS, Loss, loss_op, per_element
from .registry import TorchNames


def _threshold(value, name: str, where: str) -> sp.Expr:
    """β or δ as an exact number (0.5 as 1/2, as a book writes it): a number ≥ 0 (δ > 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf") or \
            (name == "delta" and value == 0):
        bound = "a number > 0" if name == "delta" else "a number >= 0"
        raise SymPropError(f"{where}: {name} must be {bound}, got {value!r}")
    return sp.Rational(str(value))


def _smooth(d: sp.Expr, beta: sp.Expr) -> sp.Expr:
    """(y − t) = d: d²/(2β) where |d| < β, else |d| − β/2, as torch branches (|d| for β = 0)."""
    if beta == 0:
        return sp.Abs(d)
    return sp.Piecewise((d**2 / (2 * beta), sp.Abs(d) < beta), (sp.Abs(d) - beta / 2, True))


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """torch's F.smooth_l1_loss."""
    b = _threshold(beta, "beta", "F.smooth_l1_loss") if not _torch_run(input, target) else beta
    return per_element("smooth_l1_loss", input, target, reduction, lambda g, y, t: _smooth(y - t, b),
                       lambda y, t: torch_function(SMOOTH.functions[0])(y, t, reduction=reduction, beta=beta))


def huber_loss(input, target, reduction="mean", delta=1.0):
    """torch's F.huber_loss: δ · smooth L1 with β = δ, that is d²/2 where |d| < δ, else δ(|d| − δ/2)."""
    d = _threshold(delta, "delta", "F.huber_loss") if not _torch_run(input, target) else delta
    return per_element("huber_loss", input, target, reduction, lambda g, y, t: d * _smooth(y - t, d),
                       lambda y, t: torch_function(HUBER.functions[0])(y, t, reduction=reduction, delta=delta))


def _torch_run(*tensors) -> bool:
    from ..declare.calls import in_torch, resolved

    return in_torch(*(resolved(x) for x in tensors))


class SmoothL1Loss(Loss):
    kind, toml_keys, option = "smooth_l1", ("beta",), "beta"

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        _threshold(beta, self.option, type(self).__name__)
        self.threshold = float(beta)

    def forward(self, y, t):
        return self.function(y, t, reduction=self.reduction, **{self.option: self.threshold})

    @classmethod
    def from_toml(cls, table: Table):
        return cls(table.data.get("reduction", "mean"), table.get(cls.option, _number, 1.0))

    @classmethod
    def from_torch(cls, module):
        return cls(module.reduction, getattr(module, cls.option))

    def torch_twin(self):
        import torch

        return getattr(torch.nn, self.torch_name)(reduction=self.reduction, **{self.option: self.threshold})

    @property
    def element(self):
        t = sp.latex(sp.Rational(str(self.threshold)))
        scale = "" if self.option == "beta" else t
        return rf"{scale}\,\operatorname{{smooth}}_{{{t}}}(Y - T)"

    def describe(self) -> str:
        options = ([f"reduction={self.reduction!r}"] if self.reduction != "mean" else []) + \
            ([f"{self.option}={self.threshold:g}"] if self.threshold != 1 else [])
        return f"{type(self).__name__}({', '.join(options)})"


class HuberLoss(SmoothL1Loss):
    kind, toml_keys, option = "huber", ("delta",), "delta"

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction, delta)


def _number(value, name: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(f"{name + ' ' if name else ''}must be a number, got {value!r}")
    return float(value)


SMOOTH = TorchNames(("torch.nn.functional.smooth_l1_loss",), (), "SmoothL1Loss", ("aten.smooth_l1_loss.default",))
HUBER = TorchNames(("torch.nn.functional.huber_loss",), (), "HuberLoss", ("aten.huber_loss.default",))
loss_op("smooth_l1_loss", SmoothL1Loss, smooth_l1_loss, SMOOTH,
        aten=lambda input, target, reduction=1, beta=1.0: smooth_l1_loss(input, target, ATEN_REDUCTIONS[reduction],
                                                                         beta))
loss_op("huber_loss", HuberLoss, huber_loss, HUBER,
        aten=lambda input, target, reduction=1, delta=1.0: huber_loss(input, target, ATEN_REDUCTIONS[reduction],
                                                                      delta))
