"""symprop: closed-form backpropagation, derived by SymPy, emitted as NumPy and PyTorch code.

    >>> import symprop
    >>> symprop.derive("(a(w*x) - t)**2", "w")["w"]
    2*x*(-t + a(w*x))*Subs(Derivative(a(_xi_1), _xi_1), _xi_1, w*x)

A network and a loss, declared with torch.nn's names, derive to a `Derivation`:

    >>> from symprop import Sequential, Linear, Sigmoid, BCELoss, Model, derive_network
    >>> d = derive_network(Model(Sequential(Linear(6, 4), Linear(4, 1), Sigmoid()), BCELoss()))
    >>> d.write("generated")  # doctest: +SKIP
"""

from .declare.model import (
    GELU,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Elementwise,
    ElementwiseLoss,
    Identity,
    KLDivLoss,
    LayerNorm,
    Linear,
    LogSoftmax,
    MeanPool,
    Model,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    TransformerEncoderLayer,
)
from .declare.spec import load as load_spec
from .derivation import Derivation
from .errors import SymPropError
from .scalar import chain_rule, derive

__version__ = "0.1.0"


def derive_network(model: Model) -> Derivation:
    """Derive the closed-form gradient of `model`'s loss with respect to every parameter."""
    return Derivation(model)


__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Derivation", "Elementwise", "ElementwiseLoss", "GELU",
    "Identity", "KLDivLoss", "LayerNorm", "Linear", "LogSoftmax", "MeanPool", "Model", "MSELoss", "NLLLoss", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "SymPropError", "Tanh", "TransformerEncoderLayer", "chain_rule", "derive",
    "derive_network", "load_spec",
]
