"""masked_fill: x with a value where a mask is True (x.masked_fill(mask, value), torch.masked_fill). symprop reads the
mask as a constant of the derivation, a buffer or a mask built from sizes: the causal one (True above the diagonal)
filled with -inf is attention's causal mask (causal_mask.py), added to x. Any other constant mask is a table of 0s and
1s (constant.py), read as a mask the model computes is (from its input ids, or its values): where.py's."""

from __future__ import annotations

from ..declare.calls import resolved
from ..declare.tensor import SymbolicTensor
from .registry import TorchNames, defop
from .where import masked_fill_computed, masked_fill_constant


def masked_fill(input, mask, value):
    input, mask = resolved(input), resolved(mask)
    if not isinstance(input, SymbolicTensor) and not isinstance(mask, SymbolicTensor):
        return input.masked_fill(mask, value)
    if isinstance(mask, SymbolicTensor):  # computed by the model: from its input ids, or from its values
        return masked_fill_computed(input, mask, value)
    return masked_fill_constant(input, mask, value)


defop("masked_fill", torch=TorchNames(("torch.masked_fill",), ("masked_fill",), "",
                                      ("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")),
      front={name: masked_fill for name in ("torch.masked_fill", "masked_fill", "aten.masked_fill.Scalar",
                                            "aten.masked_fill.Tensor")})
