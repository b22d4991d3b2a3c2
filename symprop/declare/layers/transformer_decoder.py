"""TransformerDecoderLayer, as torch.nn.TransformerDecoderLayer(batch_first=True, dropout=0.0): causal
self-attention, attention over a memory, and the feed-forward block; its options, parameters (torch's names and
initialization), TOML keys and torch twin. What it computes is built in `symprop.graph.transformer`."""

from __future__ import annotations

from ...graph.transformer import decoder_layer
from ..tensor import SymbolicTensor
from ..trace import running
from .transformer import TransformerLayer, additive, causal_mask, check_sequence, padding_of


class TransformerDecoderLayer(TransformerLayer):
    """torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, activation,
    batch_first=True, norm_first), called with a causal mask on its self-attention when `causal` (the default, as
    a decoder is used), and key padding masks for its input and the memory if given."""

    kind = "transformer_decoder"  # not in TOML: a decoder reads a memory, so it is declared in Python
    toml_keys = ()
    attentions = (("self_attn", ""), ("multihead_attn", "c"))
    norms = 3
    default_causal = True

    def forward(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        check_sequence(self, tgt)
        check_sequence(self, memory, "the memory")
        trace = running()
        return SymbolicTensor(decoder_layer(
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

        return Decoder(self.d_model, self.nhead, self.dim_feedforward, dropout=0.0, activation=self.activation,
                       layer_norm_eps=self.layer_norm_eps, batch_first=True, norm_first=self.norm_first)
