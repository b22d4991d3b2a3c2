"""Transformer, as torch.nn.Transformer(batch_first=True, dropout=0.0): a stack of encoder layers and its norm,
a stack of decoder layers over the encoder's output and its norm; torch's state_dict names and initialization
(Xavier-uniform for every matrix), and its torch twin."""

from __future__ import annotations

import math

from ..declare.module import Module
from ..errors import SymPropError
from .layer_norm import LayerNorm
from .registry import TorchNames, defop
from .transformer import (
    TransformerEncoderLayer,
    additive,
    causal_mask,
    check_sequence,
    check_torch_layer,
    torch_activation,
)
from .transformer_decoder import TransformerDecoderLayer
from .transformer_stacks import TransformerDecoder, TransformerEncoder


class Transformer(Module):
    """torch.nn.Transformer: forward(src, tgt, src_key_padding_mask, tgt_key_padding_mask,
    memory_key_padding_mask), the decoder's self-attention causal when `causal` (as a decoder is used)."""

    kind, toml_keys = "transformer", ()
    torch_masks = ("tgt_is_causal", "tgt_mask", ("src_mask", "memory_mask", "src_is_causal", "memory_is_causal"))

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, activation: str = "relu", norm_first: bool = False,
                 layer_norm_eps: float = 1e-5, causal: bool = True, *, dropout: float = 0.0,
                 batch_first: bool = True):
        super().__init__()
        if dropout != 0.0 or batch_first is not True:
            raise SymPropError("Transformer: dropout must be 0.0 and batch_first True, which is what symprop derives")
        options = dict(dim_feedforward=dim_feedforward, activation=activation, norm_first=norm_first,
                       layer_norm_eps=layer_norm_eps)
        self.d_model, self.nhead, self.causal = d_model, nhead, causal
        self.options = options
        self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **options), num_encoder_layers,
                                          LayerNorm(d_model, layer_norm_eps))
        self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, causal=causal, **options),
                                          num_decoder_layers, LayerNorm(d_model, layer_norm_eps))
        for _, parameter in self.named_parameters():  # torch's Transformer: Xavier-uniform for every matrix
            if len(parameter.shape) > 1:
                fan_out, fan_in = parameter.shape
                parameter.init = ("uniform", math.sqrt(6 / (fan_in + fan_out)))

    @classmethod
    def from_torch(cls, module, causal: bool = False):
        """The model that torch.nn.Transformer `module` is (its decoder's self-attention causal: `causal`)."""
        encoder, decoder = module.encoder.layers, module.decoder.layers
        first = encoder[0] if len(encoder) else decoder[0]
        activation = check_torch_layer(first, [first.self_attn])
        if module.encoder.norm is None or module.decoder.norm is None:
            raise SymPropError("Transformer: the encoder and the decoder each end with a norm, as torch's own do")
        return cls(module.d_model, module.nhead, len(encoder), len(decoder), first.linear1.out_features, activation,
                   first.norm_first, first.norm1.eps, causal)

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        check_sequence(self, src, "src")
        memory = self.encoder(src, src_key_padding_mask=src_key_padding_mask)
        return self.decoder(tgt, memory, tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask)

    def torch_twin(self):
        import torch

        model = self

        class Twin(torch.nn.Transformer):
            def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None,
                        memory_key_padding_mask=None):
                return super().forward(src, tgt, tgt_mask=causal_mask(tgt, model.causal),
                                       src_key_padding_mask=additive(src_key_padding_mask, src),
                                       tgt_key_padding_mask=additive(tgt_key_padding_mask, src),
                                       memory_key_padding_mask=additive(memory_key_padding_mask, src),
                                       tgt_is_causal=model.causal)

        return Twin(self.d_model, self.nhead, self.encoder.num_layers, self.decoder.num_layers,
                    self.options["dim_feedforward"], dropout=0.0, activation=torch_activation(self.encoder.template),
                    layer_norm_eps=self.options["layer_norm_eps"], batch_first=True,
                    norm_first=self.options["norm_first"])

    def describe(self) -> str:
        return (f"Transformer({self.d_model}, {self.nhead}, {self.encoder.num_layers} + {self.decoder.num_layers} "
                f"layers, dim_feedforward={self.options['dim_feedforward']})")


defop("transformer", torch=TorchNames(module="Transformer"), layer=Transformer,
      init_doc="Transformer Xavier-uniform for every matrix")
