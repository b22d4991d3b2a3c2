"""Loss modules, mirroring torch.nn's: each the F.* function it calls, the kind of target it takes,
its TOML keys and its torch twin. Any callable of (output, target) built from the same vocabulary is
a loss too; these are the ones with a name."""

from __future__ import annotations

import sympy as sp

from ..errors import SymPropError
from . import functional as F
from .functional import REDUCTIONS
from .module import Module
from .parse import parse


class Loss(Module):
    """A loss of (output, target), reduced as torch's `reduction` says."""

    kind = ""
    target = "same"  # the target's kind: "same" (the output's shape), "index" (class indices) or "probs"
    reductions = REDUCTIONS
    function = ""  # the F.* function
    torch_name = ""  # the torch.nn class

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self.reductions:
            raise SymPropError(f"reduction must be one of {', '.join(self.reductions)}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, y, t):
        return getattr(F, self.function)(y, t, reduction=self.reduction)

    @classmethod
    def from_torch(cls, module):
        """The loss that torch.nn loss `module` is."""
        for option, plain in (("weight", None), ("pos_weight", None), ("label_smoothing", 0.0), ("log_target", False)):
            if getattr(module, option, plain) is not plain and getattr(module, option, plain) != plain:
                raise SymPropError(f"{type(module).__name__}: {option} is not supported by symprop yet")
        return cls(reduction=module.reduction)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, self.torch_name)(reduction=self.reduction)

    def describe(self) -> str:
        return f"{type(self).__name__}({'' if self.reduction == 'mean' else f'reduction={self.reduction!r}'})"

    # The loss as a book writes it, in LaTeX (Y the output, T the target), and what the computation adds to it.
    element = ""  # the loss of the elements, summed: what the reduction divides
    per_row = False  # a sum over each row (classes) first: the mean is then over the N rows
    safeguard = ""

    def textbook(self) -> tuple[str, str]:
        """(L = ..., the note on its numerical safeguards) for the document."""
        divisor = {"sum": "", "batchmean": r"\frac{1}{N}",
                   "mean": r"\frac{1}{N}" if self.per_row else r"\frac{1}{|Y|}"}[self.reduction]
        element = self.element
        sign, element = ("-", element[1:].lstrip()) if element.startswith("-") else ("", element)
        return (rf"{sign}{divisor} \sum {element}" if element else "", self.safeguard)


class MSELoss(Loss):
    kind, function, torch_name = "mse", "mse_loss", "MSELoss"
    element = r"(Y - T)^{2}"


class BCELoss(Loss):
    kind, function, torch_name = "bce", "binary_cross_entropy", "BCELoss"
    element = r"-\left[T \odot \log Y + (1 - T) \odot \log(1 - Y)\right]"
    safeguard = (r"As torch does, the code clamps each $\log$ at $-100$, so that $\log 0$ counts as $-100$ and stays "
                 r"finite; wherever $e^{-100} < Y < 1 - e^{-100}$ it computes exactly the formulas below.")


class BCEWithLogitsLoss(Loss):
    kind, function, torch_name = "bce_with_logits", "binary_cross_entropy_with_logits", "BCEWithLogitsLoss"
    element = r"-\left[T \odot \log \sigma(Y) + (1 - T) \odot \log(1 - \sigma(Y))\right]"
    safeguard = (r"It is computed as $\log \sigma(u) = -\operatorname{softplus}(-u)$ and "
                 r"$\log(1 - \sigma(u)) = -\operatorname{softplus}(u)$, finite for every logit.")


class CrossEntropyLoss(Loss):
    """Over logits; targets are class indices (`"index"`) or probabilities (`"probs"`). Outputs (batch, sequence,
    classes) with targets (batch, sequence) are a loss per token: the mean over the tokens whose target is not
    `ignore_index` (padding)."""

    kind, function, torch_name = "cross_entropy", "cross_entropy", "CrossEntropyLoss"
    per_row = True
    safeguard = (r"The code shifts the row maximum out before $\exp$ (the log-sum-exp), so that no $\exp$ "
                 r"overflows; it cancels from the softmax, so the formulas below are unchanged by it.")

    @property
    def element(self):
        return r"-T \odot \log \operatorname{softmax}(Y)" if self.target == "probs" else \
            r"-\log \operatorname{softmax}(Y)_{n, t_n}"

    def __init__(self, reduction: str = "mean", target: str = "index", ignore_index: int = -100):
        super().__init__(reduction)
        if target not in ("index", "probs"):
            raise SymPropError(f"target must be index or probs for cross_entropy, got {target!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise SymPropError(f"ignore_index must be an integer, got {ignore_index!r}")
        self.target, self.ignore_index = target, ignore_index

    @classmethod
    def from_torch(cls, module):
        Loss.from_torch.__func__(cls, module)
        return cls(reduction=module.reduction, ignore_index=module.ignore_index)

    def forward(self, y, t):
        function = getattr(F, self.function)
        if len(y.shape) > 2 and self.target == "index":  # a loss per token: the classes on the last axis
            return function(y.reshape(-1, y.shape[-1]), t.reshape(-1), ignore_index=self.ignore_index,
                            reduction=self.reduction)
        return function(y, t, ignore_index=self.ignore_index, reduction=self.reduction)

    def torch_twin(self):
        return None  # forward runs in torch itself: torch's own function, on the same reshaped tensors

    def describe(self) -> str:
        options = [f"reduction={self.reduction!r}"] * (self.reduction != "mean") + \
            [f"target={self.target!r}"] * (self.target != "index" and type(self) is CrossEntropyLoss) + \
            [f"ignore_index={self.ignore_index}"] * (self.ignore_index != -100)
        return f"{type(self).__name__}({', '.join(options)})"


class NLLLoss(CrossEntropyLoss):
    """Over log-probabilities; targets are class indices."""

    kind, function, torch_name = "nll", "nll_loss", "NLLLoss"
    element, safeguard = r"-Y_{n, t_n}", ""

    def __init__(self, reduction: str = "mean", ignore_index: int = -100):
        super().__init__(reduction, "index", ignore_index)


class KLDivLoss(Loss):
    """Input log-probabilities, target probabilities; reductions sum, mean and batchmean."""

    kind, function, torch_name, target = "kl_div", "kl_div", "KLDivLoss", "probs"
    reductions = REDUCTIONS + ("batchmean",)
    element = r"T \odot (\log T - Y)"
    safeguard = r"$0 \log 0$ counts as 0, as torch's \texttt{xlogy} has it."


class ElementwiseLoss(Loss):
    """A custom loss: any expression in y (the output) and t (the target), per element."""

    kind = "elementwise"

    def __init__(self, expr, reduction: str = "mean"):
        super().__init__(reduction)
        text = expr if isinstance(expr, str) else sp.sstr(expr) if isinstance(expr, sp.Basic) else None
        if text is None:
            raise SymPropError(f"expected an expression (a string or a SymPy expression), got {type(expr).__name__}")
        self.expr = parse(text, ("y", "t"))
        if sp.Symbol("y") not in self.expr.free_symbols:
            raise SymPropError(f"loss {text!r} does not depend on y, so it has no gradient")

    def forward(self, y, t):
        return F.elementwise_loss(y, t, self.expr, self.reduction)

    @property
    def element(self):
        return sp.latex(self.expr.subs({sp.Symbol("y"): sp.Symbol("Y"), sp.Symbol("t"): sp.Symbol("T")}))

    def torch_twin(self):
        return None  # forward runs in torch itself

    def describe(self) -> str:
        reduction = "" if self.reduction == "mean" else f", reduction={self.reduction!r}"
        return f"ElementwiseLoss({sp.sstr(self.expr)!r}{reduction})"


class L2Penalty(Loss):
    """A loss plus weight·Σ p² for each of some parameters: what TOML's `l2 = {"fc1.weight" = 0.01}` declares."""

    def __init__(self, loss: Loss, weights: dict):
        super().__init__(loss.reduction if loss.reduction in REDUCTIONS else "mean")
        self.loss, self.weights, self.target = loss, dict(weights), loss.target  # {key: (Parameter, weight)}

    def forward(self, y, t):
        total = self.loss(y, t)
        for parameter, weight in self.weights.values():
            total = total + weight * (parameter ** 2).sum()
        return total

    def torch_twin(self):
        return None  # forward runs in torch itself

    def textbook(self) -> tuple[str, str]:
        formula, safeguard = self.loss.textbook()
        names = [rf"{weight:g} \sum \texttt{{{key.replace('_', chr(92) + '_')}}}^{{2}}"
                 for key, (_, weight) in self.weights.items()]
        return (" + ".join([formula, *names]) if formula else "", safeguard)

    def describe(self) -> str:
        penalties = [f"{weight:g} * ({key} ** 2).sum()" for key, (_, weight) in self.weights.items()]
        return " + ".join([self.loss.describe(), *penalties])


LOSSES = (MSELoss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss, KLDivLoss, ElementwiseLoss)
LOSS_TYPES = {loss.kind: loss for loss in LOSSES}
TORCH_LOSSES = {loss.torch_name: loss for loss in LOSSES if loss.torch_name}  # torch.nn's class name -> ours
