"""identity: z itself; nn.Identity."""

from __future__ import annotations

from .pointwise import pointwise
from .registry import TorchNames

pointwise("identity", lambda z: z, torch=TorchNames(module="Identity"))
