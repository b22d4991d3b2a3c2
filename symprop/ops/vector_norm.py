"""vector_norm: the Euclidean norm along one axis or several (weight_norm's, over each kernel), ‖x‖ = √Σ x², kept
as axes of size 1 (torch.linalg.vector_norm, torch.norm; F.normalize and F.cosine_similarity divide by it). Its
adjoint is the cotangent times x/‖x‖, and 0 where ‖x‖ = 0, as torch's (where √ has no derivative, torch's norm has
one: 0)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, as_value, axis_of, traced_graph
from ..declare.trace import fail, running
from ..graph import Value
from .primitive import primitive, reduction
from .registry import TorchNames
from .sum import reduce_sum


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:
        (operand,) = tensor.operands
        unit = sp.Piecewise((operand.expr / tensor.symbol, sp.StrictGreaterThan(tensor.symbol, 0)), (0, True))
        yield operand, Value(cotangent.expr * unit, operand.shape)


def _jvp(graph, tensor, tangents):
    """Σ x·ẋ/‖x‖ over its axes, 0 where ‖x‖ = 0, as its adjoint."""
    if tangents[0] is None:
        return None
    (operand,) = tensor.operands
    unit = sp.Piecewise((operand.expr / tensor.symbol, sp.StrictGreaterThan(tensor.symbol, 0)), (0, True))
    return reduce_sum(graph, Value(unit * tangents[0].expr, operand.shape), tensor.shape, stem=tensor.name + "_dot")


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """torch.linalg.vector_norm(x, 2, dim, keepdim) along one axis or several."""
    x = resolved(x)
    if in_torch(x):
        return torch_function(TORCH.functions[0])(x, ord, dim, keepdim, dtype=dtype)
    if ord != 2:
        raise fail(f"vector_norm: only the Euclidean norm (ord=2) is supported, got ord={ord!r}")
    value = as_value(x, "vector_norm")
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims or not all(isinstance(d, int) for d in dims):
        raise fail("vector_norm: give the dims to take the norm along (symprop does not flatten the whole tensor, "
                   "whose first axis is the batch)")
    axes = tuple(sorted({axis_of(d, len(value.shape), "vector_norm") for d in dims}))
    kept = tuple(1 if a in axes else d for a, d in enumerate(value.shape))
    graph, stem = traced_graph(), running().stem("norm")
    norm = graph.apply("vector_norm", (value,), stem=stem, shape=kept, axes=axes)
    if keepdim:
        return SymbolicTensor(norm)
    shape = tuple(d for a, d in enumerate(kept) if a not in axes)
    return SymbolicTensor(graph.apply("rearrange", (norm,), stem=stem, shape=shape, split=kept,
                                      perm=tuple(range(len(kept)))))


def _norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm(x, dim=...): the Euclidean norm (p 2, or the default)."""
    return vector_norm(x, 2 if p in ("fro", 2, 2.0, None) else p, dim, keepdim)


def _axis(axes):
    return axes[0] if len(axes) == 1 else tuple(axes)


def _numpy(printer, text, axes, keep):
    """np.linalg.norm along one axis; along several, the root of the sum of squares (np.linalg.norm over two axes
    would be a matrix norm, and takes no more)."""
    if len(axes) == 1:
        return f"{printer._module_format('numpy.linalg.norm')}({text}, axis={axes[0]}{', keepdims=True' * keep})"
    total = f"{printer._module_format('numpy.sum')}({printer._module_format('numpy.square')}({text}), " \
            f"axis={tuple(axes)}{', keepdims=True' * keep})"
    return f"{printer._module_format('numpy.sqrt')}({total})"


TORCH = TorchNames(("torch.linalg.vector_norm", "torch.linalg_vector_norm", "torch.norm"), ("norm",), "",
                   ("aten.linalg_vector_norm.default",))
primitive(
    "vector_norm", vjp=_vjp, jvp=_jvp, stem="norm", parenthesized=False, owns_array=True, torch=TORCH,
    functional=vector_norm,
    front={"torch.norm": _norm, "norm": _norm},
    spell={"numpy": reduction(_numpy),
           "torch": reduction(lambda p, text, axes, keep: p._call("torch.linalg.vector_norm", text,
                                                                 f"dim={_axis(axes)}",
                                                                 *(["keepdim=True"] if keep else []))),
           "text": reduction(lambda p, text, axes, keep: f"norm({text}, axis={_axis(axes)}{', keepdims' * keep})"),
           "latex": reduction(lambda p, text, axes, keep: rf"\left\lVert {text} \right\rVert"),
           "mathml": reduction(lambda p, text, axes, keep: f"<mrow><mo>‖</mo>{text}<mo>‖</mo></mrow>")}, finite=True)
