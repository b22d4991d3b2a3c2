"""max: the largest entry along one axis, kept as an axis of size 1. symprop makes it where a softmax or a log-sum-exp
subtracts it for stability: there the result does not depend on it (e^(z − c)/Σ e^(z − c) = e^z/Σ e^z for any c
constant along the axis), so no gradient flows through it, as jax stops it. Elsewhere its adjoint is torch.amax's:
the cotangent shared evenly by the entries equal to the max."""

from __future__ import annotations

import sympy as sp

from ..declare.tensor import SymbolicTensor, as_value, axis_of, traced_graph
from ..declare.trace import Unread, fail, running
from ..graph import Graph, Value
from ..shapes import N
from .argmax import first_max
from .onehot import onehot
from .primitive import primitive, reduction
from .registry import Helper, TorchNames
from .sum import reduce_sum


def reduce_max(graph: Graph, value: Value, axis: int, stem: str = "m", shift: bool = False,
               first: bool = False) -> Value:
    """max over one axis, kept as size 1. `shift`: it is subtracted and the result does not depend on it. `first`
    (the last axis only): its gradient goes to the first entry equal to it, as max pooling's and torch.max(x, dim)'s
    do, where torch.amax shares it among ties."""
    shape = tuple(1 if a == axis else d for a, d in enumerate(value.shape))
    if first and axis != len(value.shape) - 1:
        raise ValueError("max(first=True) reduces the last axis")
    return graph.apply("max", (value,), stem=stem, shape=shape, axes=(axis,), shift=shift, first=first)


def _vjp(graph, tensor, cotangent, needed):
    if needed[0] and tensor.first:  # max_k z_k = Σ_k z_k·onehot(argmax z)_k, the first of the ties
        (operand,) = tensor.operands
        picked = onehot(graph, first_max(graph, operand, stem=f"arg_{tensor.name}"), operand.shape[-1])
        yield operand, Value(cotangent.expr * picked.expr, operand.shape)
    elif needed[0] and not tensor.shift:  # max_k z_k = Σ_k z_k·[z_k = max z] / #ties, as torch.amax
        (operand,) = tensor.operands
        ties = Value(sp.Piecewise((1, sp.Eq(operand.expr, tensor.symbol)), (0, True)), operand.shape)
        count = reduce_sum(graph, ties, tensor.shape, stem=f"ties_{tensor.name}")
        yield operand, Value(cotangent.expr * ties.expr / count.expr, operand.shape)


def _jvp(graph, tensor, tangents):
    """The tangent of the entry its adjoint routes to: the first max's; the mean over ties; none for a shift, which
    the value it is taken from does not depend on."""
    if tangents[0] is None or tensor.shift:
        return None
    (operand,), (moved,) = tensor.operands, tangents
    if tensor.first:
        picked = onehot(graph, first_max(graph, operand, stem=f"arg_{tensor.name}"), operand.shape[-1])
        return reduce_sum(graph, Value(moved.expr * picked.expr, operand.shape), tensor.shape,
                          stem=tensor.name + "_dot")
    ties = Value(sp.Piecewise((1, sp.Eq(operand.expr, tensor.symbol)), (0, True)), operand.shape)
    count = reduce_sum(graph, ties, tensor.shape, stem=f"ties_{tensor.name}")
    total = reduce_sum(graph, Value(moved.expr * ties.expr, operand.shape), tensor.shape, stem=tensor.name + "_dot")
    return Value(total.expr / count.expr, tensor.shape)


def amax(x, dim=None, keepdim: bool = False) -> SymbolicTensor:
    """torch.amax(x, dim, keepdim): the max along one axis."""
    value = as_value(x, "amax")
    if isinstance(dim, (tuple, list)) and len(dim) == 1:
        dim = dim[0]
    if not isinstance(dim, int):
        raise fail("amax: give one dim (symprop takes the max along one axis)")
    axis = axis_of(dim, len(value.shape), "amax")
    top = reduce_max(traced_graph(), value, axis, stem=running().stem("m"))
    if keepdim:
        return SymbolicTensor(top)
    shape = tuple(d for a, d in enumerate(top.shape) if a != axis)
    return SymbolicTensor(traced_graph().apply("rearrange", (top,), stem=running().stem("m"), shape=shape,
                                               split=top.shape, perm=tuple(range(len(top.shape)))))


def max_along(x, dim, keepdim: bool = False) -> tuple:
    """torch.max(x, dim) and x.max(dim) (aten.max.dim): (values, indices), of which symprop reads the values (an
    operation that reads the indices is refused); the gradient goes to the first entry equal to the
    max, as torch's does (PointNet's max over points, CBAM's over channels)."""
    value = as_value(x, "max")
    axis, last = axis_of(dim, len(value.shape), "max"), len(value.shape) - 1
    if value.shape[axis] == N:  # its gradient goes to one of tied rows, which symprop cannot pick out of N
        raise fail("torch.max(x, dim) over the batch axis is not supported; torch.amax(x, dim) is (it shares a tie's "
                   "gradient among the tied entries, where max gives it to one)")
    moved = value if axis == last else SymbolicTensor(value).transpose(axis, last).value
    top = SymbolicTensor(reduce_max(traced_graph(), moved, last, stem=running().stem("m"), first=True))
    top = top if axis == last else top.transpose(axis, last)
    return (top if keepdim else top.squeeze(axis)), Unread("torch.max(x, dim)'s indices are not supported by symprop "
                                                           "(its values are)")


SHORT = 16  # a last axis this short: NumPy's max over it runs an order of magnitude slower than np.maximum per entry
NUMPY_SHORT_MAX = Helper("max_last", '''
def max_last(values):
    """The max over a short last axis (a pooling window), kept as size 1: one np.maximum per entry, where np.max
    over that axis runs an order of magnitude slower."""
    out = values[..., 0].copy()
    for k in range(1, values.shape[-1]):
        np.maximum(out, values[..., k], out=out)
    return out[..., None]
''')


def _numpy(printer, statement, texts):
    operand = statement.tensor.operands[0].shape
    if statement.tensor.first and isinstance(operand[-1], int) and operand[-1] <= SHORT and \
            len(statement.shape) == len(operand):
        return f"{printer.use(NUMPY_SHORT_MAX)}({texts[0]})"
    return reduction(lambda p, text, axes, keep: f"{p._module_format('numpy.max')}({text}, "
                     f"axis={_axis(axes)}{', keepdims=True' * keep})")(printer, statement, texts)


def _axis(axes):
    return axes[0] if len(axes) == 1 else tuple(axes)


primitive(
    "max", vjp=_vjp, jvp=_jvp, stem="m", parenthesized=False, owns_array=True, recompute=True,
    helpers=(NUMPY_SHORT_MAX,),
    spell={"numpy": _numpy,
           "torch": reduction(lambda p, text, axes, keep: p._call("torch.amax", text, f"dim={_axis(axes)}",
                                                                 *(["keepdim=True"] if keep else []))),
           "text": reduction(lambda p, text, axes, keep: f"max({text}, axis={_axis(axes)}{', keepdims' * keep})"),
           "latex": reduction(lambda p, text, axes, keep: rf"\operatorname{{rowmax}}\left({text}\right)"),
           "mathml": reduction(lambda p, text, axes, keep: f"<mrow><munder><mi>max</mi><mtext>axis "
                               f"{','.join(map(str, axes))}</mtext></munder><mo>(</mo>{text}<mo>)</mo></mrow>")},
    torch=TorchNames(functions=("torch.amax",), methods=("amax",), aten=("aten.amax.default", "aten.max.dim")),
    front={"torch.amax": amax, "amax": amax, "aten.amax.default": amax, "aten.max.dim": max_along}, finite=True)
