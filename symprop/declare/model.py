"""Stage 1, declare: networks and losses, mirroring torch.nn.

These are plain descriptions. What each one computes is written once, in
`symprop.graph.lower`, as SymPy expressions and primitives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from ..errors import SymPropError
from .parse import parse

REDUCTIONS = ("mean", "sum")
MAX_LAYERS = 128  # derivation grows linearly, 20-60 ms a layer: this keeps every spec under 10 s
MAX_CUSTOM_OPERATIONS = 2000  # in all the custom expressions of a model together, for the same reason
MAX_ENCODER_LAYERS = 16  # a transformer_encoder derives and renders in about 0.35 s: 16 take about 5 s


# -- layers --------------------------------------------------------------------
def _positive(owner, *names):
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SymPropError(f"{name} must be a positive integer, got {value!r}")


def _flag(owner, *names):
    for name in names:
        if not isinstance(getattr(owner, name), bool):
            raise SymPropError(f"{name} must be true or false, got {getattr(owner, name)!r}")


def _epsilon(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise SymPropError(f"eps must be a number between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self):
        _positive(self, "in_features", "out_features")
        _flag(self, "bias")


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


@dataclass(frozen=True)
class GELU:
    """x·Φ(x) = x/2·(1 + erf(x/√2)), torch.nn.GELU() (the exact form, not the tanh approximation)."""

    approximate: str = "none"

    def __post_init__(self):
        if self.approximate != "none":
            raise SymPropError(f"only the exact GELU (approximate='none') is supported, got {self.approximate!r}")


@dataclass(frozen=True)
class LayerNorm:
    """torch.nn.LayerNorm over the last axis."""

    normalized_shape: int
    eps: float = 1e-5
    elementwise_affine: bool = True

    def __post_init__(self):
        _positive(self, "normalized_shape")
        _epsilon(self.eps)
        _flag(self, "elementwise_affine")


@dataclass(frozen=True)
class MeanPool:
    """The mean over the sequence axis: (batch, sequence, width) -> (batch, width)."""


@dataclass(frozen=True)
class TransformerEncoderLayer:
    """torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, activation,
    batch_first=True, norm_first), called with a causal mask when `causal`."""

    d_model: int
    nhead: int
    dim_feedforward: int = 2048
    activation: str = "relu"
    norm_first: bool = False
    causal: bool = False
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        _positive(self, "d_model", "nhead", "dim_feedforward")
        _flag(self, "norm_first", "causal")
        _epsilon(self.layer_norm_eps)
        if self.activation not in ("relu", "gelu"):
            raise SymPropError(f"activation must be relu or gelu, got {self.activation!r}")
        if self.d_model % self.nhead:
            raise SymPropError(f"d_model {self.d_model} is not divisible by nhead {self.nhead}")

    @property
    def parameters(self) -> dict[str, tuple[int, ...]]:
        """state_dict keys (after the layer's index) and shapes, in torch's order."""
        e, f = self.d_model, self.dim_feedforward
        return {"self_attn.in_proj_weight": (3 * e, e), "self_attn.in_proj_bias": (3 * e,),
                "self_attn.out_proj.weight": (e, e), "self_attn.out_proj.bias": (e,),
                "linear1.weight": (f, e), "linear1.bias": (f,), "linear2.weight": (e, f), "linear2.bias": (e,),
                "norm1.weight": (e,), "norm1.bias": (e,), "norm2.weight": (e,), "norm2.bias": (e,)}


LAYER_TYPES = {"linear": Linear, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "gelu": GELU, "softmax": Softmax,
               "log_softmax": LogSoftmax, "identity": Identity, "elementwise": Elementwise, "layer_norm": LayerNorm,
               "mean_pool": MeanPool, "transformer_encoder": TransformerEncoderLayer}


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
    sequence: int | None = None  # x is (batch, sequence, inputs) when given, else (batch, inputs)

    def __post_init__(self):
        if not isinstance(self.net, Sequential):
            self.net = Sequential(*self.net)
        if not self.name.isidentifier():
            raise SymPropError(f"must be a Python identifier, got {self.name!r}", "name")
        if type(self.loss) not in LOSS_TYPES.values():
            raise SymPropError(f"{self.loss!r} is not a symprop loss", "loss")
        if len(self.net) > MAX_LAYERS:
            raise SymPropError(f"{len(self.net)} layers, more than the {MAX_LAYERS} symprop derives", "layers")
        encoders = sum(isinstance(layer, TransformerEncoderLayer) for layer in self.net)
        if encoders > MAX_ENCODER_LAYERS:
            raise SymPropError(f"{encoders} transformer_encoder layers, more than the {MAX_ENCODER_LAYERS} symprop "
                               "derives in reasonable time", "layers")
        custom = [x.expr for x in (*self.net, self.loss) if isinstance(x, (Elementwise, ElementwiseLoss))]
        operations = sum(sp.count_ops(expr) for expr in custom)
        if operations > MAX_CUSTOM_OPERATIONS:
            raise SymPropError(f"the custom expressions have {operations} operations in all, more than the "
                               f"{MAX_CUSTOM_OPERATIONS} symprop derives in reasonable time", "layers")
        widths = (getattr(layer, name) for layer in self.net
                  for name in ("in_features", "normalized_shape", "d_model") if hasattr(layer, name))
        first = next(widths, None)
        if self.inputs is None:
            if first is None:
                raise SymPropError("inputs is not given and there is no Linear layer to take it from")
            self.inputs = first
        if self.sequence is not None and (isinstance(self.sequence, bool) or not isinstance(self.sequence, int)
                                          or self.sequence < 1):
            raise SymPropError(f"must be a positive integer, got {self.sequence!r}", "sequence")
        width, pooled = self.inputs, self.sequence is None
        for i, layer in enumerate(self.net):
            where = f"layers[{i}]"
            if isinstance(layer, Linear):
                if layer.in_features != width:
                    raise SymPropError(f"Linear expects {layer.in_features} inputs, "
                                       f"but the previous width is {width}", where)
                width = layer.out_features
            elif isinstance(layer, (LayerNorm, TransformerEncoderLayer)):
                size = layer.normalized_shape if isinstance(layer, LayerNorm) else layer.d_model
                if size != width:
                    raise SymPropError(f"{type(layer).__name__} expects width {size}, "
                                       f"but the previous width is {width}", where)
            if isinstance(layer, (MeanPool, TransformerEncoderLayer)) and pooled:
                why = "the sequence is already pooled" if self.sequence else "set sequence = S in the model"
                raise SymPropError(f"{type(layer).__name__} needs inputs of shape (batch, sequence, width): {why}",
                                   where)
            pooled = pooled or isinstance(layer, MeanPool)
        self.outputs = width
        self.sequence_output = not pooled  # the output keeps the sequence axis
        if self.loss.target == "index" and width < 2:
            raise SymPropError(f"{type(self.loss).__name__} with class-index targets needs at least 2 "
                               f"outputs, the network has {width}", "loss")
        if self.sequence_output and isinstance(self.loss, (CrossEntropyLoss, NLLLoss)):
            raise SymPropError(f"{type(self.loss).__name__} takes (batch, classes) outputs; this network's keep "
                               "the sequence axis: add a mean_pool layer, or use an elementwise loss", "loss")

    @property
    def parameters(self) -> dict[str, tuple[int, ...]]:
        """state_dict keys and shapes, in state_dict order."""
        shapes = {}
        for i, layer in enumerate(self.net):
            if isinstance(layer, Linear):
                shapes[f"{i}.weight"] = (layer.out_features, layer.in_features)
                if layer.bias:
                    shapes[f"{i}.bias"] = (layer.out_features,)
            elif isinstance(layer, LayerNorm) and layer.elementwise_affine:
                shapes[f"{i}.weight"] = shapes[f"{i}.bias"] = (layer.normalized_shape,)
            elif isinstance(layer, TransformerEncoderLayer):
                shapes.update({f"{i}.{key}": shape for key, shape in layer.parameters.items()})
        return shapes

    @property
    def initializations(self) -> dict[str, tuple]:
        """torch's default initialization of each parameter: ("uniform", bound) for U(-bound, bound),
        ("ones",) or ("zeros",)."""
        inits: dict[str, tuple] = {}
        for i, layer in enumerate(self.net):
            if isinstance(layer, Linear):  # U(±1/√fan_in) for weight and bias
                inits[f"{i}.weight"] = inits[f"{i}.bias"] = ("uniform", 1 / math.sqrt(layer.in_features))
            elif isinstance(layer, LayerNorm):
                inits[f"{i}.weight"], inits[f"{i}.bias"] = ("ones",), ("zeros",)
            elif isinstance(layer, TransformerEncoderLayer):
                e, f = layer.d_model, layer.dim_feedforward
                inits.update({f"{i}.{key}": init for key, init in {
                    "self_attn.in_proj_weight": ("uniform", math.sqrt(6 / (e + 3 * e))),  # Xavier-uniform
                    "self_attn.in_proj_bias": ("zeros",),
                    "self_attn.out_proj.weight": ("uniform", 1 / math.sqrt(e)), "self_attn.out_proj.bias": ("zeros",),
                    "linear1.weight": ("uniform", 1 / math.sqrt(e)), "linear1.bias": ("uniform", 1 / math.sqrt(e)),
                    "linear2.weight": ("uniform", 1 / math.sqrt(f)), "linear2.bias": ("uniform", 1 / math.sqrt(f)),
                    "norm1.weight": ("ones",), "norm1.bias": ("zeros",),
                    "norm2.weight": ("ones",), "norm2.bias": ("zeros",)}.items()})
        return {key: inits[key] for key in self.parameters}

    @property
    def input_shape(self) -> tuple[str | int, ...]:
        """x's shape, with "batch" for the batch axis."""
        return ("batch",) + ((self.sequence,) if self.sequence else ()) + (self.inputs,)
