"""silu (swish): z·σ(z); F.silu, nn.SiLU."""

from __future__ import annotations

from .pointwise import INPLACE, pointwise
from .registry import TorchNames
from .sigmoid import sigmoid

pointwise(
    "silu", lambda z: z * sigmoid(z), params=(INPLACE,), activation=True, latex=r"\operatorname{SiLU}",
    torch=TorchNames(("torch.nn.functional.silu",), (), "SiLU", ("aten.silu.default",)))
