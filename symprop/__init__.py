"""symprop: closed-form backpropagation, derived by SymPy, emitted as NumPy and PyTorch code.

    >>> import symprop
    >>> symprop.derive("(a(w*x) - t)**2", "w")["w"]
    2*x*(-t + a(w*x))*Subs(Derivative(a(_xi_1), _xi_1), _xi_1, w*x)

A network and its loss, declared with torch.nn's names, derive to a `Derivation`:

    >>> import symprop as S
    >>> import symprop.functional as F
    >>> class Net(S.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = S.Linear(6, 4), S.Linear(4, 1)
    ...     def forward(self, x):
    ...         return self.fc2(F.relu(self.fc1(x)))
    >>> d = S.derive_network(S.Model(Net(), S.MSELoss(), inputs=6))
    >>> d.write("generated")  # doctest: +SKIP

The layers and losses (S.Linear, S.SiLU, S.CrossEntropyLoss, ...) and the elementwise functions (S.exp,
S.maximum, ...) are the ops' own, each from its module in `symprop/ops/`.
"""

from .declare.from_torch import from_torch
from .declare.model import Model
from .declare.module import Module, Sequential
from .declare.spec import load as load_spec
from .declare.tensor import Parameter, SymbolicTensor
from .derivation import Derivation
from .errors import SymPropError
from .ops import registry as _registry
from .ops.concat import cat
from .ops.loss import Loss
from .scalar import chain_rule, derive

__version__ = "0.1.0"

globals().update(_registry.layers())  # S.Linear, S.SiLU, S.LayerNorm, S.CrossEntropyLoss, ...
globals().update(_registry.publics())  # S.exp, S.log, S.maximum, ...


def derive_network(model: Model, hvp: bool = False) -> Derivation:
    """Derive the closed-form gradient of `model`'s loss with respect to every parameter (`hvp`: and the
    Hessian-vector product, the generated modules' hvp(params, ..., t, v))."""
    return Derivation(model, hvp=hvp)


__all__ = ["Derivation", "Loss", "Model", "Module", "Parameter", "Sequential", "SymbolicTensor", "SymPropError", "cat",
           "chain_rule", "derive", "derive_network", "from_torch", "load_spec", *sorted(_registry.layers()),
           *sorted(_registry.publics())]
