"""pad: zeros (or another constant: max pooling pads with −∞) before and after the entries along one axis; the adjoint
of a slice, whose own adjoint is that slice."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, as_value, traced_graph
from ..declare.trace import fail
from .primitive import primitive, shapes_of
from .registry import TorchNames


def padded(input, pad, mode: str = "constant", value=None):
    """torch's F.pad with zeros (constant mode, value 0): pad = (before, after) of the last axis, then of the one
    before it, and so on; each axis one pad."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(TORCH.functions[0])(input, pad, mode=mode, value=value)
    if mode != "constant" or value not in (None, 0, 0.0):
        raise fail(f"F.pad: only zeros are supported (mode 'constant', value 0), got mode {mode!r}, value {value!r}")
    pad = tuple(pad)
    x = as_value(input, "F.pad")
    if len(pad) % 2 or len(pad) // 2 > len(x.shape) - 1 or any(not isinstance(w, int) or w < 0 for w in pad):
        raise fail(f"F.pad: widths {pad} must be pairs of integers >= 0 for axes other than the batch")
    for k in range(len(pad) // 2):
        before, after = pad[2 * k], pad[2 * k + 1]
        if before or after:
            x = traced_graph().apply("pad", (x,), axes=(len(x.shape) - 1 - k,), bounds=(before, after))
    return SymbolicTensor(x)


def pad_axes(graph, value, axes: tuple, pads: tuple, fill: str = ""):
    """`value` padded along each of `axes` by its (before, after) in `pads`: with zeros, or −∞ where `fill` is
    "-inf"."""
    for axis, (before, after) in zip(axes, pads, strict=True):
        if before or after:
            value = graph.apply("pad", (value,), axes=(axis,), bounds=(before, after), key=fill)
    return value


def _refused(kind: str):
    def refuse(*args, **kwargs):
        raise fail(f"F.pad: mode {'reflect' if kind == 'reflection' else 'replicate'!r} is not supported by symprop "
                   "(only zeros, mode 'constant')")

    return refuse


TORCH = TorchNames(("torch.nn.functional.pad",), (), "", ("aten.constant_pad_nd.default",) +
                   tuple(f"aten.{kind}_pad{dims}d.default" for kind in ("reflection", "replication")
                         for dims in (1, 2, 3)))


def _shape(operands, axes, bounds, key=""):
    (axis,), (before, after) = axes, bounds
    return tuple(d + before + after if a == axis else d for a, d in enumerate(operands[0].shape))


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # the slice that the padding surrounds
        (operand,), (axis,), (before, _) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.apply("slice", (cotangent,), stem="d" + graph.name_of(operand.expr, tensor.name),
                                   axes=(axis,), bounds=(before, before + operand.shape[axis]))


def _jvp(graph, tensor, tangents):
    if tangents[0] is None:
        return None
    return graph.again(tensor, tangents, key="")  # a tangent is padded with zeros, whatever the value is padded with


def _numpy(printer, statement, texts):
    (axis,), (before, after) = statement.tensor.axes, statement.tensor.bounds
    widths = ["(0, 0)"] * axis + [f"({before}, {after})"] + ["(0, 0)"] * (len(shapes_of(statement)[0]) - axis - 1)
    value = f", constant_values=-{printer._module_format('numpy.inf')}" if statement.tensor.key == "-inf" else ""
    return f"{printer._module_format('numpy.pad')}({texts[0]}, ({', '.join(widths)}){value})"


def _torch(printer, statement, texts):
    (axis,), (before, after) = statement.tensor.axes, statement.tensor.bounds
    widths = [0, 0] * (len(shapes_of(statement)[0]) - axis - 1) + [before, after]  # torch: the last axis first
    value = ['value=float("-inf")'] if statement.tensor.key == "-inf" else []
    return printer._call("torch.nn.functional.pad", texts[0], str(tuple(widths)), *value)


primitive(
    "pad", shape=_shape, vjp=_vjp, jvp=_jvp, stem="padded", torch=TORCH, functional=padded,
    front={"aten.constant_pad_nd.default": lambda input, pad, value=0: padded(input, pad, value=value),
           **{f"aten.{kind}_pad{dims}d.default": _refused(kind) for kind in ("reflection", "replication")
              for dims in (1, 2, 3)}},
    spell={"numpy": _numpy, "torch": _torch,
           "text": lambda p, s, texts: f"pad({texts[0]}, axis={s.tensor.axes[0]}, widths={s.tensor.bounds}"
                                       + (f", value={s.tensor.key}" if s.tensor.key else "") + ")",
           "latex": lambda p, s, texts: rf"\operatorname{{pad}}_{{{s.tensor.bounds}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("pad", texts[0])}, finite=True)
