"""TransformerEncoderLayer, as torch.nn.TransformerEncoderLayer(batch_first=True, dropout=0.0): its options,
parameters (with torch's state_dict names and initialization), TOML keys and torch twin, and what it computes:
attention, feed-forward, layer norms and residuals, built from ops (no derivative here); and what the decoder layer
shares with it."""

from __future__ import annotations

import math

from ..declare.calls import torch_function
from ..declare.module import Module
from ..declare.options import Table, choice, flag, fraction, positive
from ..declare.tensor import Parameter, SymbolicTensor, shape_text, torch_name
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from .layer_norm import layer_norm_graph
from .linear import linear_graph
from .multihead_attention import attention, attention_parameters
from .registry import TorchNames, activations, by_torch_function, defop, lookup


def feed_forward_parameters(e: int, f: int, norms: int) -> dict:
    """linear1, linear2 and the layer norms of a transformer layer: name -> (stem, shape, init)."""
    return {"linear1.weight": ("W1_", (f, e), ("uniform", 1 / math.sqrt(e))),
            "linear1.bias": ("b1_", (f,), ("uniform", 1 / math.sqrt(e))),
            "linear2.weight": ("W2_", (e, f), ("uniform", 1 / math.sqrt(f))),
            "linear2.bias": ("b2_", (e,), ("uniform", 1 / math.sqrt(f))),
            **{f"norm{k}.{part}": (f"{stem}{k}_", (e,), init) for k in range(1, norms + 1)
               for part, stem, init in (("weight", "g", "ones"), ("bias", "be", "zeros"))}}


def padding_of(mask, where: str):
    """The graph value of a key padding mask (True where a position is padding), which must be an input."""
    if mask is None:
        return None
    tensor = running().graph.tensors.get(mask.value.expr) if isinstance(mask, SymbolicTensor) else None
    if tensor is None or tensor.op != "input" or len(tensor.shape) != 2:
        raise fail(f"{where} must be an input of the model of shape (batch, sequence), True where a position is "
                   "padding")
    tensor.boolean = tensor.padding = True
    return mask.value


def additive(mask, like):
    """A boolean key padding mask as torch's float form (-inf where True), matching the float causal mask."""
    if mask is None:
        return None
    import torch

    return torch.zeros(mask.shape, dtype=like.dtype).masked_fill(mask, float("-inf"))


def causal_mask(x, causal: bool):
    """torch's float causal mask for the sequence of x, as its layers take it; None if not causal."""
    if not causal:
        return None
    import torch

    return torch.nn.Transformer.generate_square_subsequent_mask(x.shape[1], dtype=x.dtype)


def check_sequence(layer, x, what: str = "what flows in"):
    if not isinstance(x, SymbolicTensor) or x.ndim != 3:
        raise fail(f"{type(layer).__name__} needs inputs of shape (batch, sequence, width), got "
                   f"{shape_text(getattr(x, 'shape', ()))}: set sequence = S in the model")
    if x.shape[-1] != layer.d_model:
        raise fail(f"{type(layer).__name__} expects width {layer.d_model}, but {what} has shape {shape_text(x.shape)}")


def check_torch_layer(module, attentions) -> str:
    """The activation of a torch transformer layer symprop can derive; a one-line error for what it cannot."""
    if not all(a.batch_first for a in attentions):
        raise SymPropError(f"{type(module).__name__} must be batch_first=True")
    if module.dropout.p or any(a.dropout for a in attentions):
        raise SymPropError(f"{type(module).__name__}: dropout must be 0.0, which is what symprop derives")
    op = by_torch_function(torch_name(module.activation)) if callable(module.activation) else None
    if op is None or op.name not in activations():
        raise SymPropError(f"{type(module).__name__}: activation {getattr(module.activation, '__name__', '?')} is "
                           f"not one symprop has ({', '.join(activations())})")
    activation = op.name
    if module.norm1.bias is None or any(a.in_proj_bias is None for a in attentions):
        raise SymPropError(f"{type(module).__name__}(bias=False) is not supported yet")
    return activation


class TransformerLayer(Module):
    """What the encoder and decoder layers share: options, their checks, parameters and names."""

    attentions = (("self_attn", ""),)  # (state_dict prefix, variable suffix) of each nn.MultiheadAttention
    norms = 2
    default_causal = False

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, activation: str = "relu",
                 norm_first: bool = False, causal: bool | None = None, layer_norm_eps: float = 1e-5, *,
                 dropout: float = 0.0, batch_first: bool = True):
        super().__init__()
        self.d_model, self.nhead = positive(d_model, "d_model"), positive(nhead, "nhead")
        self.dim_feedforward = positive(dim_feedforward, "dim_feedforward")
        self.activation = choice(activation, tuple(activations()), "activation")
        causal = self.default_causal if causal is None else causal
        self.norm_first, self.causal = flag(norm_first, "norm_first"), flag(causal, "causal")
        self.layer_norm_eps = fraction(layer_norm_eps, "eps")
        if dropout != 0.0:
            raise SymPropError(f"dropout must be 0.0, which is what symprop derives, got {dropout!r}")
        if batch_first is not True:
            raise SymPropError("batch_first must be True: inputs are (batch, sequence, width)")
        if d_model % nhead:
            raise SymPropError(f"d_model {d_model} is not divisible by nhead {nhead}")
        parameters = {**{name: spec for prefix, suffix in self.attentions
                         for name, spec in attention_parameters(prefix, suffix, d_model).items()},
                      **feed_forward_parameters(d_model, dim_feedforward, self.norms)}
        self._stems = {name: stem for name, (stem, _, _) in parameters.items()}
        for name, (_, shape, init) in parameters.items():
            self.register_parameter(name, Parameter(shape, init=init))

    @classmethod
    def from_torch(cls, module, causal: bool = False):
        """The layer that torch's `module` is (its self-attention called with a causal mask: `causal`)."""
        activation = check_torch_layer(module, [getattr(module, prefix) for prefix, _ in cls.attentions])
        return cls(module.self_attn.embed_dim, module.self_attn.num_heads, module.linear1.out_features, activation,
                   module.norm_first, causal, module.norm1.eps)

    def output_width(self, width: int) -> int:
        return width

    def symbol_stem(self, name: str, tag: str) -> str:
        return self._stems[name] + tag

    def parameter_values(self) -> dict:
        return {name: parameter.resolve().value for name, parameter in self._parameters.items()}

    def describe(self) -> str:
        options = [f"dim_feedforward={self.dim_feedforward}"] + \
            [f"{k}={v!r}" for k, v, default in (("activation", self.activation, "relu"),
                                                ("norm_first", self.norm_first, False),
                                                ("causal", self.causal, self.default_causal)) if v != default]
        return f"{type(self).__name__}({self.d_model}, {self.nhead}, {', '.join(options)})"


class TransformerEncoderLayer(TransformerLayer):
    """torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, activation,
    batch_first=True, norm_first), called with a causal mask when `causal`, and a key padding mask if given."""

    kind = "transformer_encoder"
    toml_keys = ("nhead", "dim_feedforward", "activation", "norm_first", "causal", "eps")
    torch_masks = ("is_causal", "src_mask", ())
    most_in_a_model = 16  # one derives and renders in about 0.35 s: 16 take about 5 s

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("nhead", positive), table.get("dim_feedforward", positive, 2048),
                   table.get("activation", choice, "relu", tuple(activations())), table.get("norm_first", flag, False),
                   table.get("causal", flag, False), table.get("eps", fraction, 1e-5))

    def forward(self, src, src_key_padding_mask=None):
        check_sequence(self, src)
        trace = running()
        padding = padding_of(src_key_padding_mask, "src_key_padding_mask")
        return SymbolicTensor(encoder_layer_graph(trace.graph, trace.stem(""), self, src.value, self.parameter_values(),
                                            padding))

    def torch_twin(self):
        import torch

        layer = self

        class Encoder(torch.nn.TransformerEncoderLayer):
            def forward(self, src, src_key_padding_mask=None):
                return super().forward(src, src_mask=causal_mask(src, layer.causal),
                                       src_key_padding_mask=additive(src_key_padding_mask, src),
                                       is_causal=layer.causal)

        return Encoder(self.d_model, self.nhead, self.dim_feedforward, dropout=0.0, activation=torch_activation(self),
                       layer_norm_eps=self.layer_norm_eps, batch_first=True, norm_first=self.norm_first)

def torch_activation(layer):
    """The activation as torch's transformer layers take it: torch.nn.functional's function of that name."""
    functions = lookup(layer.activation).torch.functions
    return torch_function(next((f for f in functions if f.startswith("torch.nn.functional.")), functions[0]))


# -- what the layers compute ---------------------------------------------------------------------------------------
def encoder_layer_graph(g: Graph, i: str, layer, x: Value, p: dict[str, Value], padding: Value | None = None) -> Value:
    """`layer` has the options of nn.TransformerEncoderLayer; `p` its parameters by state_dict name; `i` tags
    the names of its values; `padding` is a key padding mask (True where a position is padding)."""
    blocks = {1: lambda v: attention(g, i, layer, v, p, causal=layer.causal, padding=padding),
              2: lambda v: feed_forward(g, i, layer, v, p)}
    return residuals(g, i, layer, x, p, blocks)


def residuals(g: Graph, i: str, layer, x: Value, p: dict, blocks: dict) -> Value:
    """x + block(norm(x)) for each block (norm_first), or norm(x + block(x))."""
    j = f"_{i}" if i[:1].isdigit() else i  # r1_0 in layer 0, r1_enc in net.enc

    def norm(value: Value, k: int) -> Value:
        return layer_norm_graph(g, value, layer.layer_norm_eps, (p[f"norm{k}.weight"], p[f"norm{k}.bias"]), f"n{k}{j}")

    for k, block in blocks.items():
        if layer.norm_first:
            x = g.named(Value(x.expr + block(norm(x, k)).expr, x.shape), f"r{k}{j}")
        else:
            x = norm(g.named(Value(x.expr + block(x).expr, x.shape), f"r{k}{j}"), k)
    return x


def feed_forward(g: Graph, i: str, layer, x: Value, p: dict) -> Value:
    hidden = linear_graph(g, x, p["linear1.weight"], p["linear1.bias"], f"f{i}")
    op = lookup(layer.activation)
    activated = g.activate(hidden, op.scalar(), f"act{i}", op.latex)
    return linear_graph(g, activated, p["linear2.weight"], p["linear2.bias"], f"ff{i}")


defop("transformer_encoder", torch=TorchNames(module="TransformerEncoderLayer"), layer=TransformerEncoderLayer,
      init_doc="transformer layers: attention's in-projection Xavier-uniform, its biases zero, the rest as Linear "
               "and LayerNorm")
