"""nll_loss: −y[n, t_n] per row, over log-probabilities, with class-index targets; F.nll_loss, nn.NLLLoss."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.options import integer
from ..declare.tensor import shape_text
from ..declare.trace import fail
from ..errors import SymPropError
from .cross_entropy import CrossEntropyLoss, class_targets, classes_last, own_rows
from .loss import ATEN_REDUCTIONS, REDUCTIONS, loss_op, operands, reduced, unsupported
from .registry import TorchNames
from .take_rows import Rows


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """torch's F.nll_loss (weight: not yet)."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        return torch_function(TORCH.functions[0])(input, target, weight, ignore_index=ignore_index,
                                                  reduction=reduction)
    unsupported("nll_loss", weight=weight)
    if isinstance(target, Rows):  # torch.arange(n) of (n, n) log-probabilities: each row's own, the diagonal
        return own_rows("nll_loss", input, reduction, logits=False)
    y, t = operands("nll_loss", input, target, reduction, REDUCTIONS + ("none",))
    y = classes_last("nll_loss", y, t)
    targets, kept, count = class_targets("nll_loss", y, t, ignore_index)
    if targets is t.expr:
        raise fail(f"F.nll_loss takes class-index targets, got a target of shape {shape_text(t.shape)}")
    return reduced(y, -kept * targets * y.expr, reduction, per_sample=True, count=count)


class NLLLoss(CrossEntropyLoss):
    """Over log-probabilities; targets are class indices."""

    kind = "nll"
    element, safeguard = r"-Y_{n, t_n}", ""

    toml_targets = ("index",)

    def __init__(self, reduction: str = "mean", ignore_index: int = -100):
        super().__init__(reduction, "index", ignore_index)

    @classmethod
    def from_toml(cls, table):
        return cls(reduction=table.data.get("reduction", "mean"), ignore_index=table.get("ignore_index", integer, -100))

    @classmethod
    def from_torch(cls, module):
        if getattr(module, "weight", None) is not None:
            raise SymPropError("NLLLoss: weight is not supported by symprop yet")
        return cls(reduction=module.reduction, ignore_index=module.ignore_index)


TORCH = TorchNames(("torch.nn.functional.nll_loss",), (), "NLLLoss", ("aten.nll_loss.default",))
loss_op("nll_loss", NLLLoss, nll_loss, TORCH,  # ATen's order: (input, target, weight, reduction, ignore_index)
        aten=lambda input, target, weight=None, reduction=1, ignore_index=-100: nll_loss(
            input, target, weight, ignore_index, ATEN_REDUCTIONS[reduction]))
