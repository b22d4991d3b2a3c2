"""flip: the entries of some axes in reverse order (torch.flip; torch lowers the backward direction of a
bidirectional LSTM or GRU to it). A rearrangement that is its own inverse, so its adjoint is itself: the cotangent
flipped back."""

from __future__ import annotations

from ..declare.tensor import SymbolicTensor, as_value, axis_of, traced_graph
from ..declare.trace import running
from .primitive import linear_jvp, primitive
from .registry import TorchNames


def _shape(operands, axes):
    return operands[0].shape


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:
        yield tensor.operands[0], graph.apply("flip", (cotangent,), stem=f"d{tensor.name}_flipped", axes=tensor.axes)


def flip(x, dims) -> SymbolicTensor:
    """torch.flip(x, dims), x.flip(dims): the entries along each of `dims` in reverse order."""
    value = as_value(x, "torch.flip")
    dims = (dims,) if isinstance(dims, int) and not isinstance(dims, bool) else tuple(dims)
    if not dims:
        return SymbolicTensor(value)
    axes = tuple(sorted({axis_of(d, len(value.shape), "torch.flip") for d in dims}))
    return SymbolicTensor(traced_graph().apply("flip", (value,), stem=running().stem("fl"), axes=axes))


def _numpy(printer, statement, texts):
    axes = statement.tensor.axes
    return f"{printer._module_format('numpy.flip')}({texts[0]}, axis={axes[0] if len(axes) == 1 else axes})"


def _torch(printer, statement, texts):
    return printer._call("torch.flip", texts[0], f"dims={statement.tensor.axes}")


def _text(printer, statement, texts):
    return f"flip({texts[0]}, axis={statement.tensor.axes})"


def _latex(printer, statement, texts):
    axes = ",".join(map(str, statement.tensor.axes))
    return rf"\operatorname{{flip}}_{{\text{{axis {axes}}}}}\left({texts[0]}\right)"


def _mathml(printer, statement, texts):
    axes = ",".join(map(str, statement.tensor.axes))
    return (f"<mrow><msub><mi>flip</mi><mtext>axis {axes}</mtext></msub><mo>(</mo>{texts[0]}<mo>)</mo></mrow>")


primitive(
    "flip", shape=_shape, vjp=_vjp, jvp=linear_jvp, stem="fl", moves=True, aliases=True,  # np.flip is a view
    spell={"numpy": _numpy, "torch": _torch, "text": _text, "latex": _latex, "mathml": _mathml},
    torch=TorchNames(functions=("torch.flip",), methods=("flip",), aten=("aten.flip.default",)),
    front={"torch.flip": flip, "flip": flip, "aten.flip.default": flip}, finite=True)
