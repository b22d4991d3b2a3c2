"""vector_norm: the Euclidean norm along one axis, ‖x‖ = √Σ x², kept as an axis of size 1 (torch.linalg.vector_norm,
torch.norm; F.normalize and F.cosine_similarity divide by it). Its adjoint is the cotangent times x/‖x‖, and 0 where
‖x‖ = 0, as torch's (where √ has no derivative, torch's norm has one: 0)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, as_value, axis_of, traced_graph
from ..declare.trace import fail, running
from ..graph import Value
from .primitive import primitive, reduction
from .registry import TorchNames


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:
        (operand,) = tensor.operands
        unit = sp.Piecewise((operand.expr / tensor.symbol, sp.StrictGreaterThan(tensor.symbol, 0)), (0, True))
        yield operand, Value(cotangent.expr * unit, operand.shape)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """torch.linalg.vector_norm(x, 2, dim, keepdim) along one axis."""
    x = resolved(x)
    if in_torch(x):
        return torch_function(TORCH.functions[0])(x, ord, dim, keepdim, dtype=dtype)
    if ord != 2:
        raise fail(f"vector_norm: only the Euclidean norm (ord=2) is supported, got ord={ord!r}")
    value = as_value(x, "vector_norm")
    dim = dim[0] if isinstance(dim, (tuple, list)) and len(dim) == 1 else dim
    if not isinstance(dim, int):
        raise fail("vector_norm: give one dim (symprop takes the norm along one axis)")
    axis = axis_of(dim, len(value.shape), "vector_norm")
    kept = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    graph, stem = traced_graph(), running().stem("norm")
    norm = graph.apply("vector_norm", (value,), stem=stem, shape=kept, axes=(axis,))
    if keepdim:
        return SymbolicTensor(norm)
    shape = tuple(d for a, d in enumerate(kept) if a != axis)
    return SymbolicTensor(graph.apply("rearrange", (norm,), stem=stem, shape=shape, split=kept,
                                      perm=tuple(range(len(kept)))))


def _norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm(x, dim=...): the Euclidean norm (p 2, or the default)."""
    return vector_norm(x, 2 if p in ("fro", 2, 2.0, None) else p, dim, keepdim)


TORCH = TorchNames(("torch.linalg.vector_norm", "torch.linalg_vector_norm", "torch.norm"), ("norm",), "",
                   ("aten.linalg_vector_norm.default",))
primitive(
    "vector_norm", vjp=_vjp, stem="norm", parenthesized=False, owns_array=True, torch=TORCH, functional=vector_norm,
    front={"torch.norm": _norm, "norm": _norm},
    spell={"numpy": reduction(lambda p, text, axes, keep: f"{p._module_format('numpy.linalg.norm')}({text}, "
                              f"axis={axes[0]}{', keepdims=True' * keep})"),
           "torch": reduction(lambda p, text, axes, keep: p._call("torch.linalg.vector_norm", text, f"dim={axes[0]}",
                                                                 *(["keepdim=True"] if keep else []))),
           "text": reduction(lambda p, text, axes, keep: f"norm({text}, axis={axes[0]}{', keepdims' * keep})"),
           "latex": reduction(lambda p, text, axes, keep: rf"\left\lVert {text} \right\rVert"),
           "mathml": reduction(lambda p, text, axes, keep: f"<mrow><mo>‖</mo>{text}<mo>‖</mo></mrow>")})
