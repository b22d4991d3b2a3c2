"""kl_div: t·(log t − y) per element, over log-probabilities y and probabilities t, 0·log 0 taken as 0 (xlogy);
F.kl_div, nn.KLDivLoss, with reductions sum, mean and batchmean."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from .loss import ATEN_REDUCTIONS, REDUCTIONS, Loss, loss_op, operands, reduced, same_shape
from .registry import TorchNames
from .xlogy import xlogy


def kl_div(input, target, reduction="mean", log_target=False):
    """torch's F.kl_div: t·(log t − y) per element, or, with log_target (the target given as log-probabilities),
    e^t·(t − y)."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        return torch_function(TORCH.functions[0])(input, target, reduction=reduction, log_target=log_target)
    y, t = operands("kl_div", input, target, reduction, REDUCTIONS + ("batchmean",))
    same_shape("kl_div", y, t)
    each = sp.exp(t.expr) * (t.expr - y.expr) if log_target else xlogy(t.expr, t.expr) - t.expr * y.expr
    return reduced(y, each, reduction, per_sample=reduction == "batchmean")


class KLDivLoss(Loss):
    """Input log-probabilities, target probabilities; reductions sum, mean and batchmean."""

    kind, target = "kl_div", "probs"
    target_domain = "simplex"
    reductions = REDUCTIONS + ("batchmean",)
    element = r"T \odot (\log T - Y)"
    safeguard = r"$0 \log 0$ counts as 0, as torch's \texttt{xlogy} has it."


TORCH = TorchNames(("torch.nn.functional.kl_div",), (), "KLDivLoss", ("aten.kl_div.default",))
loss_op("kl_div", KLDivLoss, kl_div, TORCH,  # ATen's kl_div sums; F.kl_div divides by the batch itself (batchmean)
        aten=lambda input, target, reduction=1, log_target=False: kl_div(input, target, ATEN_REDUCTIONS[reduction],
                                                                         log_target))
