"""binary_cross_entropy: −[t·log y + (1 − t)·log(1 − y)] per element, each log clamped at −100 as torch's;
F.binary_cross_entropy, nn.BCELoss."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import torch_function
from .loss import ATEN_REDUCTIONS, Loss, loss_op, per_element
from .registry import TorchNames


def _clamped_log(u: sp.Expr, clamp: bool) -> sp.Expr:
    """torch's BCELoss clamps log at −100, so that log 0 counts as −100 and stays finite."""
    return sp.Piecewise((sp.log(u), u > sp.exp(-100)), (-100, True)) if clamp else sp.log(u)


def _each(g, y, t):
    g.safeguarded |= not g.book  # the book writes the logs plainly, and a note says what the code adds
    return -(t * _clamped_log(y, not g.book) + (1 - t) * _clamped_log(1 - y, not g.book))


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """torch's F.binary_cross_entropy (weight: not yet)."""
    return per_element("binary_cross_entropy", input, target, reduction, _each,
                       lambda y, t: torch_function(TORCH.functions[0])(y, t, weight, reduction=reduction),
                       weight=weight)


class BCELoss(Loss):
    kind = "bce"
    target_domain, decision = "unit", 0.5
    element = r"-\left[T \odot \log Y + (1 - T) \odot \log(1 - Y)\right]"
    safeguard = (r"As torch does, the code clamps each $\log$ at $-100$, so that $\log 0$ counts as $-100$ and stays "
                 r"finite; wherever $e^{-100} < Y < 1 - e^{-100}$ it computes exactly the formulas below.")


TORCH = TorchNames(("torch.nn.functional.binary_cross_entropy",), (), "BCELoss", ("aten.binary_cross_entropy.default",))
loss_op("binary_cross_entropy", BCELoss, binary_cross_entropy, TORCH,
        aten=lambda input, target, weight=None, reduction=1: binary_cross_entropy(input, target, weight,
                                                                                  ATEN_REDUCTIONS[reduction]))
