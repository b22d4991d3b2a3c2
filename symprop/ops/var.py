"""var and std: the sum of the squared deviations from the mean along dims, divided by n − correction (torch's
Bessel correction: 1 unless unbiased=False or correction says otherwise); std is its square root. torch.var/std,
Tensor.var/std. Composites of the mean and the sum, so their derivatives are those ops'."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, as_value, axis_of
from ..declare.trace import fail
from ..graph import Value
from ..shapes import size
from .registry import TorchNames, defop
from .sum import sum_over


def _correction(unbiased, correction) -> int:
    if correction is not None:
        if isinstance(correction, bool) or not isinstance(correction, (int, float)):
            raise fail(f"var: correction must be a number, got {correction!r}")
        return correction
    return 0 if unbiased is False else 1


def _torch_options(unbiased, correction) -> dict:
    """The correction as the caller gave it to torch: correction=, unbiased=, or neither."""
    return {"correction": correction} if correction is not None else \
        {"unbiased": unbiased} if unbiased is not None else {}


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """torch.var(input, dim, unbiased, keepdim) and its correction= form."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(VAR.functions[0])(input, dim, keepdim=keepdim, **_torch_options(unbiased, correction))
    value = as_value(input, "var")
    ndim = len(value.shape)
    dims = range(ndim) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    n = size([value.shape[axis_of(d, ndim, "var")] for d in dims])
    c = _correction(unbiased, correction)
    if n == c:
        raise fail(f"var over {n} entries with correction {c}: a division by zero")
    deviation = input - sum_over(input, dim, keepdim=True, mean=True)
    squares = sum_over(deviation * deviation, dim, keepdim)
    return SymbolicTensor(Value(squares.value.expr / (n - sp.nsimplify(c)), squares.value.shape))


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """torch.std: the square root of var."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(STD.functions[0])(input, dim, keepdim=keepdim, **_torch_options(unbiased, correction))
    return var(input, dim, unbiased, keepdim, correction=correction) ** 0.5


def _aten(function):
    return lambda input, dim=None, *, correction=None, keepdim=False: function(input, dim, None, keepdim,
                                                                               correction=correction)


VAR = TorchNames(("torch.var",), ("var",), "", ("aten.var.correction", "aten.var.dim"))
STD = TorchNames(("torch.std",), ("std",), "", ("aten.std.correction", "aten.std.dim"))
defop("var", torch=VAR, functional=var, front={"aten.var.correction": _aten(var)})
defop("std", torch=STD, functional=std, front={"aten.std.correction": _aten(std)})
