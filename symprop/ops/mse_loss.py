"""mse_loss: (y − t)² per element, reduced; F.mse_loss, nn.MSELoss."""

from __future__ import annotations

from ..declare.calls import torch_function
from .loss import ATEN_REDUCTIONS, Loss, loss_op, per_element
from .registry import TorchNames


def mse_loss(input, target, reduction="mean"):
    """torch's F.mse_loss."""
    return per_element("mse_loss", input, target, reduction, lambda g, y, t: (y - t) ** 2,
                       lambda y, t: torch_function(TORCH.functions[0])(y, t, reduction=reduction))


class MSELoss(Loss):
    kind = "mse"
    element = r"(Y - T)^{2}"


TORCH = TorchNames(("torch.nn.functional.mse_loss",), (), "MSELoss", ("aten.mse_loss.default",))
loss_op("mse_loss", MSELoss, mse_loss, TORCH,
        aten=lambda input, target, reduction=1: mse_loss(input, target, ATEN_REDUCTIONS[reduction]))
