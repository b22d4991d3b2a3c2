"""where: torch.where(mask, x, y), x where the mask holds and y elsewhere, elementwise; its derivative follows the
branch taken (sympy.diff of the Piecewise), as torch's does. A −inf branch (a score that a softmax drops) is the
minus_infinity mask added to the other."""

from __future__ import annotations

import math
import numbers

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, as_value, elementwise, traced_graph
from ..declare.trace import fail
from .causal_mask import causal_mask, causal_size
from .compare import condition, indicator
from .constant import constant_table
from .minus_infinity import minus_infinity
from .registry import TorchNames, defop


def _minus_inf(value) -> bool:
    return isinstance(value, numbers.Real) and math.isinf(value) and value < 0


def where(condition_, input, other):
    """torch.where(condition, input, other)."""
    mask, input, other = resolved(condition_), resolved(input), resolved(other)
    if in_torch(mask, input, other):
        return torch_function(TORCH.functions[0])(mask, input, other)
    input, other = _number(input), _number(other)
    if in_torch(mask):  # a constant mask (GPT-2's tril buffer): the value filled in where it does not hold, or does
        if isinstance(input, SymbolicTensor) and isinstance(other, numbers.Real):
            return masked_fill_constant(input, ~mask, other)
        if isinstance(other, SymbolicTensor) and isinstance(input, numbers.Real):
            return masked_fill_constant(other, mask, input)
        mask = _table(mask)
    for value in (input, other):
        if isinstance(value, numbers.Real) and not math.isfinite(value) and not _minus_inf(value):
            raise fail(f"torch.where: a branch of {value} is not supported (finite numbers, or -inf)")
    if _minus_inf(other):  # scores dropped where the mask does not hold
        return _added_mask(input, elementwise(lambda m: indicator(sp.Not(condition(m))), (mask,), "where"))
    if _minus_inf(input):
        return _added_mask(other, mask)
    return elementwise(lambda m, a, b: sp.Piecewise((a, condition(m)), (b, True)), (mask, input, other), "where")


def _number(value):
    """A 0-d constant tensor (torch.full([], finfo.min) made in forward) as the number it holds."""
    return value.item() if in_torch(value) and value.dim() == 0 and value.is_floating_point() else value


def _added_mask(x, mask):
    """x + (−inf where mask holds, else 0)."""
    value = as_value(mask, "where")
    return x + SymbolicTensor(minus_infinity(traced_graph(), value))


def masked_fill_constant(input, mask, value):
    """x.masked_fill(mask, value) for a constant mask (a buffer, or a mask built from sizes): the causal one filled
    with -inf is attention's causal mask, added to x; any other is a table of 0s and 1s, read as a computed mask."""
    size = causal_size(mask) if mask.dtype == _bool() else None
    if size is not None and _minus_inf(value):
        return input + SymbolicTensor(causal_mask(traced_graph(), size))
    return masked_fill_computed(input, _table(mask), value)


def _table(mask) -> SymbolicTensor:
    """A constant mask as a table of 0s and 1s, which the derivation reads as a computed one."""
    return SymbolicTensor(constant_table(traced_graph(), (mask != 0).double()))


def _bool():
    import torch

    return torch.bool


def masked_fill_computed(input, mask, value):
    """x.masked_fill(mask, value) for a mask the model computes (from its input ids, or its values)."""
    if _minus_inf(value):
        return _added_mask(input, mask)
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise fail(f"masked_fill: a value of {value!r} is not supported (a finite number, or -inf)")
    return where(mask, value, input)


TORCH = TorchNames(("torch.where",), ("where",), "", ("aten.where.self", "aten.where.ScalarOther",
                                                      "aten.where.ScalarSelf", "aten.where.Scalar"))
defop("where", torch=TORCH, functional=where)
