"""Shapes of tensors: tuples of ints and the batch-size symbol N, broadcast as NumPy does."""

from __future__ import annotations

import sympy as sp

N = sp.Symbol("N", integer=True, positive=True)  # the batch size, known only at run time

Shape = tuple  # of int | sp.Symbol


def broadcast(*shapes: Shape) -> Shape:
    """NumPy's broadcasting: align on the right, and a 1 stretches."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def size(shape: Shape) -> sp.Expr:
    return sp.Mul(*shape)


def dims_at(shape: Shape, axis: int, ndim: int):
    """The dim that `shape`, aligned on the right within `ndim` axes, has at `axis` (None if absent)."""
    offset = ndim - len(shape)
    return shape[axis - offset] if axis >= offset else None


def batch_sized(shape: Shape) -> bool:
    """Whether a shape has the batch axis (N, or N times the sequence length once flattened)."""
    return any(isinstance(d, sp.Expr) and d.has(N) for d in shape)
