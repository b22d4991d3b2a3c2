"""sigmoid: the logistic function σ(z) = 1/(1 + e^(−z)); torch.sigmoid, nn.Sigmoid."""

from __future__ import annotations

import math

import sympy as sp

from ..functions import DefinedFunction
from ..notes import define
from ..simplify import stable_log
from .pointwise import pointwise
from .registry import Helper, TorchNames
from .softplus import softplus


class sigmoid(DefinedFunction):
    """The logistic function σ(u) = 1 / (1 + e^(−u))."""

    nargs = 1

    @staticmethod
    def definition(u):
        return 1 / (1 + sp.exp(-u))

    @classmethod
    def eval(cls, u):
        if u.is_zero:
            return sp.Rational(1, 2)
        if u.could_extract_minus_sign():  # σ(−u) = 1 − σ(u), from the definition
            return 1 - cls(-u)
        return None

    def _latex(self, printer, exp=None):
        power = f"^{{{exp}}}" if exp is not None else ""  # exp comes printed already
        return rf"\sigma{power}\left({printer._print(self.args[0])}\right)"


LOG_SIGMOID = define(
    "stable log sigmoid", "log σ(u) = −softplus(−u) and log(1 − σ(u)) = −softplus(u): finite for every u",
    r"$\log \sigma(u) = -\operatorname{{softplus}}(-u)$ and $\log(1 - \sigma(u)) = -\operatorname{{softplus}}(u)$: "
    r"the loss stays finite for every logit.")


@stable_log(LOG_SIGMOID)
def _log_sigmoid(u):
    """log σ(u) = −softplus(−u)."""
    return -softplus(-u.args[0]) if isinstance(u, sigmoid) else None


@stable_log(LOG_SIGMOID)
def _log_one_minus_sigmoid(u):
    """log(1 − σ(u)) = log σ(−u) = −softplus(u)."""
    rest = 1 - u
    return -softplus(rest.args[0]) if isinstance(rest, sigmoid) else None


NUMPY = Helper("sigmoid", '''
def sigmoid(x):
    """The logistic function 1/(1 + e^-x), elementwise: e^min(x, 0)/(1 + e^-|x|), exact for x of either sign, and
    no exp ever overflows."""
    return np.exp(np.minimum(x, 0)) / (1 + np.exp(-np.abs(x)))
''')

pointwise(
    "sigmoid", python=lambda u: 0.5 * (1 + math.tanh(u / 2)), sympy=sigmoid, activation=True, latex=r"\sigma",
    torch=TorchNames(("torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit"), ("sigmoid",), "Sigmoid",
                     ("aten.sigmoid.default",)),
    spell={"numpy": NUMPY, "torch": "torch.sigmoid", "mathml": "\u03c3"}, cost={"numpy": 6},
    doc="σ(z) = 1/(1 + e^(−z)), elementwise, as torch.sigmoid.", finite=True)
