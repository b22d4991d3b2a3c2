"""The built-in layers, one file per kind: declaration, parameters, TOML keys, forward and torch twin."""

from .activations import GELU, Dropout, Elementwise, Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .embedding import Embedding
from .layer_norm import LayerNorm
from .linear import Linear
from .mean_pool import MeanPool
from .positions import PositionalEncoding
from .transformer import TransformerEncoderLayer
from .transformer_decoder import TransformerDecoderLayer
from .transformer_model import Transformer
from .transformer_stacks import TransformerDecoder, TransformerEncoder

LAYERS = (Linear, Sigmoid, Tanh, ReLU, GELU, Softmax, LogSoftmax, Identity, Dropout, Elementwise, LayerNorm, MeanPool,
          Embedding, PositionalEncoding, TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
          TransformerDecoder, Transformer)
LAYER_TYPES = {layer.kind: layer for layer in LAYERS if hasattr(layer, "from_toml")}  # TOML's type = "..."
TORCH_LAYERS = {layer.__name__: layer for layer in LAYERS if layer.from_torch}  # torch.nn's class name -> ours

__all__ = ["GELU", "LAYERS", "LAYER_TYPES", "TORCH_LAYERS", "Dropout", "Elementwise", "Embedding", "Identity",
           "LayerNorm", "Linear", "LogSoftmax", "MeanPool", "PositionalEncoding", "ReLU", "Sigmoid", "Softmax", "Tanh",
           "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerEncoderLayer"]
