"""The built-in layers, one file per kind: declaration, parameters, TOML keys, forward and torch twin."""

from .activations import GELU, Elementwise, Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .layer_norm import LayerNorm
from .linear import Linear
from .mean_pool import MeanPool
from .transformer import TransformerEncoderLayer

LAYERS = (Linear, Sigmoid, Tanh, ReLU, GELU, Softmax, LogSoftmax, Identity, Elementwise, LayerNorm, MeanPool,
          TransformerEncoderLayer)
LAYER_TYPES = {layer.kind: layer for layer in LAYERS}  # TOML's type = "..."
TORCH_LAYERS = {layer.__name__: layer for layer in LAYERS if layer.from_torch}  # torch.nn's class name -> ours

__all__ = ["GELU", "LAYERS", "LAYER_TYPES", "TORCH_LAYERS", "Elementwise", "Identity", "LayerNorm", "Linear",
           "LogSoftmax", "MeanPool", "ReLU", "Sigmoid", "Softmax", "Tanh", "TransformerEncoderLayer"]
