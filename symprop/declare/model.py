"""Stage 1, declare: networks and losses, mirroring torch.nn.

These are plain descriptions. What each one computes is written once, in
`symprop.graph.lower`, as SymPy expressions and primitives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..errors import SymPropError
from .parse import parse

REDUCTIONS = ("mean", "sum")
MAX_LAYERS = 128  # derivation grows linearly, 20-60 ms a layer: this keeps every spec under 10 s
MAX_CUSTOM_OPERATIONS = 2000  # in all the custom expressions of a model together, for the same reason


# -- layers --------------------------------------------------------------------
@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self):
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SymPropError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.bias, bool):
            raise SymPropError(f"bias must be true or false, got {self.bias!r}")


@dataclass(frozen=True)
class Sigmoid:
    pass


@dataclass(frozen=True)
class Tanh:
    pass


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Identity:
    pass


@dataclass(frozen=True)
class Softmax:
    dim: int = -1

    def __post_init__(self):
        if self.dim not in (-1, 1):
            raise SymPropError(f"Softmax acts on the last axis (dim=-1), got dim={self.dim}")


@dataclass(frozen=True)
class LogSoftmax(Softmax):
    pass


@dataclass(frozen=True)
class Elementwise:
    """A custom activation: any SymPy expression in z, applied elementwise."""

    expr: sp.Expr | str

    def __post_init__(self):
        expr = parse(self.expr, ("z",)) if isinstance(self.expr, str) else sp.sympify(self.expr)
        extra = {s.name for s in expr.free_symbols} - {"z"}
        if extra:
            raise SymPropError(f"activation {self.expr!r} may use only z, not {', '.join(sorted(extra))}")
        object.__setattr__(self, "expr", expr)


LAYER_TYPES = {"linear": Linear, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "softmax": Softmax,
               "log_softmax": LogSoftmax, "identity": Identity, "elementwise": Elementwise}


class Sequential:
    """A list of layers, numbered from 0 as in torch.nn.Sequential."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if type(layer) not in LAYER_TYPES.values():
                raise SymPropError(f"layer {i}: {layer!r} is not a symprop layer")
        self.layers = tuple(layers)

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


# -- losses --------------------------------------------------------------------
@dataclass(frozen=True)
class _Loss:
    reduction: str = "mean"
    targets = ("same",)  # the kinds of target the loss accepts; the first is the default

    def __post_init__(self):
        allowed = REDUCTIONS + (("batchmean",) if isinstance(self, KLDivLoss) else ())
        if self.reduction not in allowed:
            raise SymPropError(f"reduction must be one of {', '.join(allowed)}, got {self.reduction!r}")

    @property
    def target(self) -> str:
        return self.targets[0]


@dataclass(frozen=True)
class MSELoss(_Loss):
    pass


@dataclass(frozen=True)
class BCELoss(_Loss):
    pass


@dataclass(frozen=True)
class BCEWithLogitsLoss(_Loss):
    pass


@dataclass(frozen=True)
class CrossEntropyLoss(_Loss):
    """Over logits; targets are class indices (`"index"`) or probabilities (`"probs"`)."""

    target: str = "index"

    def __post_init__(self):
        super().__post_init__()
        if self.target not in ("index", "probs"):
            raise SymPropError(f"target must be index or probs for cross_entropy, got {self.target!r}")


@dataclass(frozen=True)
class NLLLoss(_Loss):
    """Over log-probabilities; targets are class indices."""

    target = "index"


@dataclass(frozen=True)
class KLDivLoss(_Loss):
    """Input log-probabilities, target probabilities; reductions sum, mean and batchmean."""


@dataclass(frozen=True, init=False)
class ElementwiseLoss(_Loss):
    """A custom loss: any SymPy expression in y (the output) and t (the target), per element."""

    expr: sp.Expr | str = ""

    def __init__(self, expr: sp.Expr | str, reduction: str = "mean"):
        object.__setattr__(self, "expr", expr)
        object.__setattr__(self, "reduction", reduction)
        self.__post_init__()

    def __post_init__(self):
        super().__post_init__()
        expr = parse(self.expr, ("y", "t")) if isinstance(self.expr, str) else sp.sympify(self.expr)
        extra = {s.name for s in expr.free_symbols} - {"y", "t"}
        if extra:
            raise SymPropError(f"loss {self.expr!r} may use only y and t, not {', '.join(sorted(extra))}")
        if sp.Symbol("y") not in expr.free_symbols:
            raise SymPropError(f"loss {self.expr!r} does not depend on y, so it has no gradient")
        object.__setattr__(self, "expr", expr)


LOSS_TYPES = {"mse": MSELoss, "bce": BCELoss, "bce_with_logits": BCEWithLogitsLoss,
              "cross_entropy": CrossEntropyLoss, "nll": NLLLoss, "kl_div": KLDivLoss,
              "elementwise": ElementwiseLoss}


# -- the model -----------------------------------------------------------------
@dataclass
class Model:
    """A network and its loss: what symprop derives."""

    net: Sequential
    loss: _Loss
    name: str = "model"
    inputs: int | None = None
    source: str = field(default="", compare=False)  # where it was declared, for generated headers

    def __post_init__(self):
        if not isinstance(self.net, Sequential):
            self.net = Sequential(*self.net)
        if not self.name.isidentifier():
            raise SymPropError(f"must be a Python identifier, got {self.name!r}", "name")
        if type(self.loss) not in LOSS_TYPES.values():
            raise SymPropError(f"{self.loss!r} is not a symprop loss", "loss")
        if len(self.net) > MAX_LAYERS:
            raise SymPropError(f"{len(self.net)} layers, more than the {MAX_LAYERS} symprop derives", "layers")
        custom = [x.expr for x in (*self.net, self.loss) if isinstance(x, (Elementwise, ElementwiseLoss))]
        operations = sum(sp.count_ops(expr) for expr in custom)
        if operations > MAX_CUSTOM_OPERATIONS:
            raise SymPropError(f"the custom expressions have {operations} operations in all, more than the "
                               f"{MAX_CUSTOM_OPERATIONS} symprop derives in reasonable time", "layers")
        first = next((layer for layer in self.net if isinstance(layer, Linear)), None)
        if self.inputs is None:
            if first is None:
                raise SymPropError("inputs is not given and there is no Linear layer to take it from")
            self.inputs = first.in_features
        width = self.inputs
        for i, layer in enumerate(self.net):
            if isinstance(layer, Linear):
                if layer.in_features != width:
                    raise SymPropError(f"Linear expects {layer.in_features} inputs, "
                                       f"but the previous width is {width}", f"layers[{i}]")
                width = layer.out_features
        self.outputs = width
        if self.loss.target == "index" and width < 2:
            raise SymPropError(f"{type(self.loss).__name__} with class-index targets needs at least 2 "
                               f"outputs, the network has {width}", "loss")

    @property
    def parameters(self) -> dict[str, tuple[int, ...]]:
        """state_dict keys and shapes, in state_dict order."""
        shapes = {}
        for i, layer in enumerate(self.net):
            if isinstance(layer, Linear):
                shapes[f"{i}.weight"] = (layer.out_features, layer.in_features)
                if layer.bias:
                    shapes[f"{i}.bias"] = (layer.out_features,)
        return shapes
