"""kl_div: t·(log t − y) per element, over log-probabilities y and probabilities t, 0·log 0 taken as 0 (xlogy);
F.kl_div, nn.KLDivLoss, with reductions sum, mean and batchmean."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, torch_function
from .loss import REDUCTIONS, Loss, loss_op, operands, reduced, same_shape, unsupported
from .registry import TorchNames
from .xlogy import xlogy


def kl_div(input, target, reduction="mean", log_target=False):
    """torch's F.kl_div (log_target: not yet)."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        return torch_function(TORCH.functions[0])(input, target, reduction=reduction, log_target=log_target)
    unsupported("kl_div", log_target=log_target or None)
    y, t = operands("kl_div", input, target, reduction, REDUCTIONS + ("batchmean",))
    same_shape("kl_div", y, t)
    return reduced(y, xlogy(t.expr, t.expr) - t.expr * y.expr, reduction, per_sample=reduction == "batchmean")


class KLDivLoss(Loss):
    """Input log-probabilities, target probabilities; reductions sum, mean and batchmean."""

    kind, target = "kl_div", "probs"
    target_domain = "simplex"
    reductions = REDUCTIONS + ("batchmean",)
    element = r"T \odot (\log T - Y)"
    safeguard = r"$0 \log 0$ counts as 0, as torch's \texttt{xlogy} has it."


TORCH = TorchNames(("torch.nn.functional.kl_div",), (), "KLDivLoss", ("aten.kl_div.default",))
loss_op("kl_div", KLDivLoss, kl_div, TORCH)
