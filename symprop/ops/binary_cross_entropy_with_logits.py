"""binary_cross_entropy_with_logits: −[t·log σ(y) + (1 − t)·log(1 − σ(y))] per element, which simplification
makes softplus, finite for every logit; F.binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import applied_twice, torch_function
from ..notes import define
from .loss import ATEN_REDUCTIONS, Loss, loss_op, per_element
from .registry import TorchNames
from .sigmoid import sigmoid

NAME = "binary_cross_entropy_with_logits"
define("double sigmoid",
       "the network ends in a sigmoid, and {0} applies one again: pass it the logits (drop the sigmoid), or use "
       "BCELoss",
       r"\textbf{{Warning:}} the network ends in a sigmoid, and \texttt{{{0}}} applies one again: pass it the logits "
       r"(drop the sigmoid), or use \texttt{{BCELoss}}.", warning=True)


def _each(g, y, t):
    p = sigmoid(y)
    return -(t * sp.log(p) + (1 - t) * sp.log(1 - p))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """torch's F.binary_cross_entropy_with_logits (weight and pos_weight: not yet)."""
    return per_element(NAME, input, target, reduction, _each,
                       lambda y, t: torch_function(TORCH.functions[0])(y, t, weight, reduction=reduction,
                                                                       pos_weight=pos_weight),
                       check=lambda y, t: applied_twice(y, "sigmoid", NAME), weight=weight, pos_weight=pos_weight)


class BCEWithLogitsLoss(Loss):
    kind = "bce_with_logits"
    target_domain, decision = "unit", 0.0  # the output is a logit
    element = r"-\left[T \odot \log \sigma(Y) + (1 - T) \odot \log(1 - \sigma(Y))\right]"
    safeguard = (r"It is computed as $\log \sigma(u) = -\operatorname{softplus}(-u)$ and "
                 r"$\log(1 - \sigma(u)) = -\operatorname{softplus}(u)$, finite for every logit.")


TORCH = TorchNames((f"torch.nn.functional.{NAME}",), (), "BCEWithLogitsLoss",
                   ("aten.binary_cross_entropy_with_logits.default",))
loss_op(NAME, BCEWithLogitsLoss, binary_cross_entropy_with_logits, TORCH,  # ATen's: weight, pos_weight, reduction
        aten=lambda input, target, weight=None, pos_weight=None, reduction=1: binary_cross_entropy_with_logits(
            input, target, weight, ATEN_REDUCTIONS[reduction], pos_weight))
