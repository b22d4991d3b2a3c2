"""l1_loss: |y − t| per element, reduced; F.l1_loss, nn.L1Loss. Its derivative is sign(y − t), 0 where y = t, as
torch's."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import torch_function
from .loss import ATEN_REDUCTIONS, Loss, loss_op, per_element
from .registry import TorchNames


def l1_loss(input, target, reduction="mean"):
    """torch's F.l1_loss."""
    return per_element("l1_loss", input, target, reduction, lambda g, y, t: sp.Abs(y - t),
                       lambda y, t: torch_function(TORCH.functions[0])(y, t, reduction=reduction))


class L1Loss(Loss):
    kind = "l1"
    element = r"\left|Y - T\right|"


TORCH = TorchNames(("torch.nn.functional.l1_loss",), (), "L1Loss", ("aten.l1_loss.default",))
loss_op("l1_loss", L1Loss, l1_loss, TORCH,
        aten=lambda input, target, reduction=1: l1_loss(input, target, ATEN_REDUCTIONS[reduction]))
