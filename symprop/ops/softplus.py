"""softplus: log(1 + e^(βz))/β, and z itself where βz > threshold, as torch computes it; F.softplus, nn.Softplus.
Its SymPy function, softplus(u) = log(1 + e^u), is also the stable form that simplification gives log σ."""

from __future__ import annotations

import math

import sympy as sp

from ..functions import DefinedFunction
from ..simplify import stable_log
from .pointwise import number, pointwise, positive_number
from .registry import Helper, Param, TorchNames


class softplus(DefinedFunction):
    """softplus(u) = log(1 + e^u), the stable form of −log σ(−u)."""

    nargs = 1

    @staticmethod
    def definition(u):
        return sp.log(1 + sp.exp(u))

    def _latex(self, printer, exp=None):
        power = f"^{{{exp}}}" if exp is not None else ""  # exp comes printed already
        return rf"\operatorname{{softplus}}{power}\left({printer._print(self.args[0])}\right)"


@stable_log()
def _log_one_plus_exp(u):
    """log(1 + e^u) = softplus(u)."""
    rest = u - 1
    return softplus(rest.args[0]) if isinstance(rest, sp.exp) else None


NUMPY = Helper("softplus", '''
def softplus(x):
    """log(1 + e^x), elementwise: max(x, 0) + log1p(e^-|x|), which never overflows (the number np.logaddexp(0, x)
    gives, in a tenth of its time)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
''')


def _torch(printer, expr):
    # softplus(u) = −log σ(−u); torch's logsigmoid is exact where F.softplus switches to u at 20
    return f"(-{printer._module_format('torch.nn.functional.logsigmoid')}({printer._print(-expr.args[0])}))"


def _definition(z, beta, threshold):
    beta, threshold = (sp.Integer(v) if float(v).is_integer() else v for v in (beta, threshold))  # βz, not 1.0·z
    return sp.Piecewise((z, beta * z > threshold), (softplus(beta * z) / beta, True))


def _exact(x):
    """softplus(x) = −log σ(−x) in torch, exact everywhere (F.softplus returns x itself past its threshold)."""
    import torch

    return -torch.nn.functional.logsigmoid(-x)


pointwise(
    "softplus", _definition, reference=_exact, sympy=softplus, activation=True, latex=r"\operatorname{softplus}",
    python=lambda u: max(u, 0.0) + math.log1p(math.exp(-abs(u))),
    params=(Param("beta", 1.0, positive_number), Param("threshold", 20.0, number)),
    torch=TorchNames(("torch.nn.functional.softplus",), (), "Softplus", ("aten.softplus.default",)),
    spell={"numpy": NUMPY, "torch": _torch}, kinks=(20.0,),
    doc="log(1 + e^(βz))/β, and z itself where βz > threshold, as torch's F.softplus.", finite=True)
