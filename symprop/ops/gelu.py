"""gelu: z·Φ(z) = z/2·(1 + erf(z/√2)), or torch's tanh approximation; F.gelu, nn.GELU."""

from __future__ import annotations

import sympy as sp

from .pointwise import one_of, pointwise
from .registry import Param, TorchNames


def _definition(z, approximate):
    if approximate == "tanh":  # 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), as torch has it
        return z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + sp.Float("0.044715") * z ** 3)))
    return z / 2 * (1 + sp.erf(z / sp.sqrt(2)))


pointwise(
    "gelu", _definition, params=(Param("approximate", "none", one_of("none", "tanh")),), activation=True,
    latex=r"\operatorname{GELU}",
    torch=TorchNames(("torch.nn.functional.gelu",), (), "GELU", ("aten.gelu.default",)),
    doc="z·Φ(z) = z/2·(1 + erf(z/√2)) (approximate='none'), or torch's tanh approximation (approximate='tanh').")
