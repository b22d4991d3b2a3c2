"""TransformerEncoderLayer, as torch.nn.TransformerEncoderLayer(batch_first=True, dropout=0.0): its options,
parameters (with torch's state_dict names and initialization), TOML keys and torch twin. What it computes
is built from primitives in `symprop.graph.transformer`."""

from __future__ import annotations

import math

from ...errors import SymPropError
from ...graph.transformer import encoder_layer
from ..module import Module
from ..options import Table, choice, flag, fraction, positive
from ..tensor import SymbolicTensor, shape_text
from ..trace import fail, running

# state_dict name -> (variable stem in generated code, shape as a function of (E, F))
_PARAMETERS = {
    "self_attn.in_proj_weight": ("W", lambda e, f: (3 * e, e)), "self_attn.in_proj_bias": ("B", lambda e, f: (3 * e,)),
    "self_attn.out_proj.weight": ("Wo", lambda e, f: (e, e)), "self_attn.out_proj.bias": ("bo", lambda e, f: (e,)),
    "linear1.weight": ("W1_", lambda e, f: (f, e)), "linear1.bias": ("b1_", lambda e, f: (f,)),
    "linear2.weight": ("W2_", lambda e, f: (e, f)), "linear2.bias": ("b2_", lambda e, f: (e,)),
    "norm1.weight": ("g1_", lambda e, f: (e,)), "norm1.bias": ("be1_", lambda e, f: (e,)),
    "norm2.weight": ("g2_", lambda e, f: (e,)), "norm2.bias": ("be2_", lambda e, f: (e,)),
}


class TransformerEncoderLayer(Module):
    """torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, activation,
    batch_first=True, norm_first), called with a causal mask when `causal`."""

    kind = "transformer_encoder"
    toml_keys = ("nhead", "dim_feedforward", "activation", "norm_first", "causal", "eps")

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, activation: str = "relu",
                 norm_first: bool = False, causal: bool = False, layer_norm_eps: float = 1e-5):
        super().__init__()
        self.d_model, self.nhead = positive(d_model, "d_model"), positive(nhead, "nhead")
        self.dim_feedforward = positive(dim_feedforward, "dim_feedforward")
        self.activation = choice(activation, ("relu", "gelu"), "activation")
        self.norm_first, self.causal = flag(norm_first, "norm_first"), flag(causal, "causal")
        self.layer_norm_eps = fraction(layer_norm_eps, "eps")
        if d_model % nhead:
            raise SymPropError(f"d_model {d_model} is not divisible by nhead {nhead}")
        from ..tensor import Parameter

        e, f = d_model, dim_feedforward
        inits = {"self_attn.in_proj_weight": ("uniform", math.sqrt(6 / (e + 3 * e))),  # Xavier-uniform
                 "self_attn.out_proj.weight": ("uniform", 1 / math.sqrt(e)),
                 "linear1.weight": ("uniform", 1 / math.sqrt(e)), "linear1.bias": ("uniform", 1 / math.sqrt(e)),
                 "linear2.weight": ("uniform", 1 / math.sqrt(f)), "linear2.bias": ("uniform", 1 / math.sqrt(f)),
                 "norm1.weight": "ones", "norm2.weight": "ones"}
        for name, (_, shape) in _PARAMETERS.items():
            self.register_parameter(name, Parameter(shape(e, f), init=inits.get(name, "zeros")))

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("nhead", positive), table.get("dim_feedforward", positive, 2048),
                   table.get("activation", choice, "relu", ("relu", "gelu")), table.get("norm_first", flag, False),
                   table.get("causal", flag, False), table.get("eps", fraction, 1e-5))

    @classmethod
    def from_torch(cls, module, causal: bool = False):
        """The layer that torch.nn.TransformerEncoderLayer `module` is (called with is_causal: `causal`)."""
        attention = module.self_attn
        if not attention.batch_first:
            raise SymPropError("TransformerEncoderLayer must be batch_first=True")
        if module.dropout.p or attention.dropout:
            raise SymPropError("TransformerEncoderLayer: dropout must be 0.0, which is what symprop derives")
        activation = {1: "relu", 2: "gelu"}.get(getattr(module, "activation_relu_or_gelu", 0))
        if activation is None:
            raise SymPropError("TransformerEncoderLayer: activation must be relu or gelu")
        if module.norm1.bias is None or attention.in_proj_bias is None:
            raise SymPropError("TransformerEncoderLayer(bias=False) is not supported yet")
        return cls(attention.embed_dim, attention.num_heads, module.linear1.out_features, activation,
                   module.norm_first, causal, module.norm1.eps)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        if not isinstance(x, SymbolicTensor) or x.ndim != 3:
            raise fail(f"TransformerEncoderLayer needs inputs of shape (batch, sequence, width), got "
                       f"{shape_text(getattr(x, 'shape', ()))}: set sequence = S in the model")
        if x.shape[-1] != self.d_model:
            raise fail(f"TransformerEncoderLayer expects width {self.d_model}, but what flows in has shape "
                       f"{shape_text(x.shape)}")
        trace = running()
        params = {name: parameter.resolve().value for name, parameter in self._parameters.items()}
        return SymbolicTensor(encoder_layer(trace.graph, trace.stem(""), self, x.value, params))

    def symbol_stem(self, name: str, tag: str) -> str:
        return _PARAMETERS[name][0] + tag

    def torch_twin(self):
        import torch

        layer = self

        class Encoder(torch.nn.TransformerEncoderLayer):
            def forward(self, src):
                if not layer.causal:
                    return super().forward(src)
                mask = torch.nn.Transformer.generate_square_subsequent_mask(src.shape[1], dtype=src.dtype)
                return super().forward(src, src_mask=mask, is_causal=True)

        return Encoder(self.d_model, self.nhead, self.dim_feedforward, dropout=0.0, activation=self.activation,
                       layer_norm_eps=self.layer_norm_eps, batch_first=True, norm_first=self.norm_first)

    def describe(self) -> str:
        options = [f"dim_feedforward={self.dim_feedforward}"] + \
            [f"{k}={v!r}" for k, v, default in (("activation", self.activation, "relu"),
                                                ("norm_first", self.norm_first, False),
                                                ("causal", self.causal, False)) if v != default]
        return f"TransformerEncoderLayer({self.d_model}, {self.nhead}, {', '.join(options)})"
