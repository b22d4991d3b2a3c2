"""pad: zeros before and after the entries along one axis; the adjoint of a slice, whose own adjoint is that slice."""

from __future__ import annotations

from .primitive import primitive, shapes_of


def _shape(operands, axes, bounds):
    (axis,), (before, after) = axes, bounds
    return tuple(d + before + after if a == axis else d for a, d in enumerate(operands[0].shape))


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # the slice that the padding surrounds
        (operand,), (axis,), (before, _) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.apply("slice", (cotangent,), stem="d" + graph.name_of(operand.expr, tensor.name),
                                   axes=(axis,), bounds=(before, before + operand.shape[axis]))


def _numpy(printer, statement, texts):
    (axis,), (before, after) = statement.tensor.axes, statement.tensor.bounds
    widths = ["(0, 0)"] * axis + [f"({before}, {after})"] + ["(0, 0)"] * (len(shapes_of(statement)[0]) - axis - 1)
    return f"{printer._module_format('numpy.pad')}({texts[0]}, ({', '.join(widths)}))"


def _torch(printer, statement, texts):
    (axis,), (before, after) = statement.tensor.axes, statement.tensor.bounds
    widths = [0, 0] * (len(shapes_of(statement)[0]) - axis - 1) + [before, after]  # torch: the last axis first
    return printer._call("torch.nn.functional.pad", texts[0], str(tuple(widths)))


primitive(
    "pad", shape=_shape, vjp=_vjp, stem="padded",
    spell={"numpy": _numpy, "torch": _torch,
           "text": lambda p, s, texts: f"pad({texts[0]}, axis={s.tensor.axes[0]}, widths={s.tensor.bounds})",
           "latex": lambda p, s, texts: rf"\operatorname{{pad}}_{{{s.tensor.bounds}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("pad", texts[0])})
