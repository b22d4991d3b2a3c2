"""TransformerEncoder and TransformerDecoder, as torch.nn has them: `num_layers` copies of a layer, then an
optional norm; torch's state_dict names (layers.0...., norm.weight) and torch twins."""

from __future__ import annotations

import copy

from ..declare.module import Module
from ..declare.options import positive
from .layer_norm import LayerNorm
from .registry import TorchNames, defop
from .transformer import TransformerEncoderLayer
from .transformer_decoder import TransformerDecoderLayer


class TransformerStack(Module):
    """What the encoder and decoder stacks share: copies of one layer, and a norm after them."""

    layer_class = None

    def __init__(self, layer, num_layers: int, norm: LayerNorm | None = None):
        super().__init__()
        positive(num_layers, "num_layers")
        layers = Module()
        for i in range(num_layers):  # copies, as torch's: each with parameters of its own
            layers.add_module(str(i), copy.deepcopy(layer))
        self.layers = layers
        if norm is not None:
            self.norm = norm
        object.__setattr__(self, "template", layer)  # what the layers are copies of; not a submodule itself
        self.num_layers = num_layers

    @classmethod
    def from_torch(cls, module, causal: bool = False):
        """The stack that torch's `module` is (its layers' self-attention causal: `causal`)."""
        layer = cls.layer_class.from_torch(module.layers[0], causal=causal)
        norm = None if module.norm is None else LayerNorm.from_torch(module.norm)
        return cls(layer, len(module.layers), norm)

    def finish(self, x):
        return self.norm(x) if "norm" in self._modules else x

    def twin_layers(self):
        import torch

        twin = self.template.torch_twin()
        layers = torch.nn.ModuleList([copy.deepcopy(twin) for _ in range(self.num_layers)])
        norm = self._modules["norm"].torch_twin() if "norm" in self._modules else None
        return layers, norm

    def describe(self) -> str:
        norm = ", norm" if "norm" in self._modules else ""
        return f"{type(self).__name__}({self.template.describe()} × {self.num_layers}{norm})"


class TransformerEncoder(TransformerStack):
    """torch.nn.TransformerEncoder(encoder_layer, num_layers, norm): forward(src, src_key_padding_mask)."""

    kind, layer_class = "transformer_encoder_stack", TransformerEncoderLayer
    torch_masks = ("is_causal", "mask", ())

    def forward(self, src, src_key_padding_mask=None):
        for layer in self.layers.children():
            src = layer(src, src_key_padding_mask=src_key_padding_mask)
        return self.finish(src)

    def torch_twin(self):
        import torch

        layers, norm = self.twin_layers()

        class Encoder(torch.nn.Module):  # the stack as torch runs it: each layer, then the norm
            def __init__(self):
                super().__init__()
                self.layers, self.norm = layers, norm

            def forward(self, src, src_key_padding_mask=None):
                for layer in self.layers:
                    src = layer(src, src_key_padding_mask=src_key_padding_mask)
                return src if self.norm is None else self.norm(src)

        return Encoder()


class TransformerDecoder(TransformerStack):
    """torch.nn.TransformerDecoder(decoder_layer, num_layers, norm): forward(tgt, memory, tgt_key_padding_mask,
    memory_key_padding_mask)."""

    kind, layer_class = "transformer_decoder_stack", TransformerDecoderLayer
    torch_masks = ("tgt_is_causal", "tgt_mask", ("memory_mask", "memory_is_causal"))

    def forward(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        for layer in self.layers.children():
            tgt = layer(tgt, memory, tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask)
        return self.finish(tgt)

    def torch_twin(self):
        import torch

        layers, norm = self.twin_layers()

        class Decoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers, self.norm = layers, norm

            def forward(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
                for layer in self.layers:
                    tgt = layer(tgt, memory, tgt_key_padding_mask=tgt_key_padding_mask,
                                memory_key_padding_mask=memory_key_padding_mask)
                return tgt if self.norm is None else self.norm(tgt)

        return Decoder()


defop("transformer_encoder_stack", torch=TorchNames(module="TransformerEncoder"), layer=TransformerEncoder)
defop("transformer_decoder_stack", torch=TorchNames(module="TransformerDecoder"), layer=TransformerDecoder)
