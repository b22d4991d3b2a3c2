"""TransformerDecoderLayer, as torch.nn.TransformerDecoderLayer(batch_first=True, dropout=0.0): causal
self-attention, attention over a memory, and the feed-forward block; its options, parameters (torch's names and
initialization), TOML keys and torch twin, and what it computes."""

from __future__ import annotations

from ..declare.tensor import SymbolicTensor
from ..declare.trace import running
from ..graph import Graph, Value
from .multihead_attention import attention
from .registry import TorchNames, defop
from .transformer import (
    TransformerLayer,
    additive,
    causal_mask,
    check_sequence,
    feed_forward,
    padding_of,
    residuals,
    torch_activation,
)


class TransformerDecoderLayer(TransformerLayer):
    """torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, activation,
    batch_first=True, norm_first), called with a causal mask on its self-attention when `causal` (the default, as
    a decoder is used), and key padding masks for its input and the memory if given."""

    kind = "transformer_decoder"  # not in TOML: a decoder reads a memory, so it is declared in Python
    toml_keys = ()
    torch_masks = ("tgt_is_causal", "tgt_mask", ("memory_mask", "memory_is_causal"))
    attentions = (("self_attn", ""), ("multihead_attn", "c"))
    norms = 3
    default_causal = True

    def forward(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        check_sequence(self, tgt)
        check_sequence(self, memory, "the memory")
        trace = running()
        return SymbolicTensor(decoder_layer_graph(
            trace.graph, trace.stem(""), self, tgt.value, memory.value, self.parameter_values(),
            padding_of(tgt_key_padding_mask, "tgt_key_padding_mask"),
            padding_of(memory_key_padding_mask, "memory_key_padding_mask")))

    def torch_twin(self):
        import torch

        layer = self

        class Decoder(torch.nn.TransformerDecoderLayer):
            def forward(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
                return super().forward(tgt, memory, tgt_mask=causal_mask(tgt, layer.causal),
                                       tgt_key_padding_mask=additive(tgt_key_padding_mask, tgt),
                                       memory_key_padding_mask=additive(memory_key_padding_mask, tgt),
                                       tgt_is_causal=layer.causal)

        return Decoder(self.d_model, self.nhead, self.dim_feedforward, dropout=0.0, activation=torch_activation(self),
                       layer_norm_eps=self.layer_norm_eps, batch_first=True, norm_first=self.norm_first)


def decoder_layer_graph(g: Graph, i: str, layer, x: Value, memory: Value, p: dict[str, Value],
                  padding: Value | None = None, memory_padding: Value | None = None) -> Value:
    """nn.TransformerDecoderLayer: causal self-attention (when `layer.causal`), attention over `memory`, and the
    feed-forward block, each in a residual with its layer norm."""
    blocks = {1: lambda v: attention(g, i, layer, v, p, causal=layer.causal, padding=padding),
              2: lambda v: attention(g, i + "x", layer, v, p, "multihead_attn", memory, padding=memory_padding),
              3: lambda v: feed_forward(g, i, layer, v, p)}
    return residuals(g, i, layer, x, p, blocks)


defop("transformer_decoder", torch=TorchNames(module="TransformerDecoderLayer"), layer=TransformerDecoderLayer)
