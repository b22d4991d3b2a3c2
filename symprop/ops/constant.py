"""constant: a table of numbers that a model holds as a buffer, or computes from sizes alone, and that no other op
reads as its own (a causal mask is causal_mask, a sinusoidal table sinusoid). The generated code writes its numbers
out once, at the top of the module, exactly (each float by its shortest repr). A constant has no derivative."""

from __future__ import annotations

import hashlib

from .primitive import no_jvp, primitive
from .registry import Helper, constant_rule

LIMIT = 4096  # numbers: a larger table would make the generated module a data file


@constant_rule(last=True)
def constant_table(graph, tensor):
    """Any tensor of floating-point numbers, up to LIMIT of them."""
    from ..errors import SymPropError

    if not tensor.is_floating_point():
        return None
    if tensor.numel() > LIMIT:
        raise SymPropError(f"a constant tensor of {tensor.numel()} numbers (a buffer, or a tensor made in forward): "
                           f"symprop writes constants of up to {LIMIT} numbers into the code")
    data = tuple(float(v) for v in tensor.detach().double().reshape(-1).tolist())
    return graph.apply("constant", (), shape=tuple(tensor.shape), data=data)


def _name(statement) -> str:
    """The constant's name at the top of the module: TABLE_ and the start of its numbers' digest (stable)."""
    return "TABLE_" + hashlib.sha256(repr(statement.tensor.data).encode()).hexdigest()[:8].upper()


def _nested(data: tuple, shape: tuple) -> str:
    if not shape:
        return repr(data[0])
    if len(shape) == 1:
        return "(" + ", ".join(repr(v) for v in data) + ("," if len(data) == 1 else "") + ")"
    step = len(data) // shape[0]
    rows = [_nested(data[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]
    return "(\n" + "".join(f"    {row},\n" for row in rows) + ")"


def _definition(statement) -> Helper:
    return Helper(_name(statement), f"{_name(statement)} = {_nested(statement.tensor.data, statement.shape)}\n")


def _numpy(printer, statement, texts):
    name = printer.use(_definition(statement))
    return f"{printer._module_format('numpy.asarray')}({name}, dtype={printer.dtype_text})"


def _torch(printer, statement, texts):
    name = printer.use(_definition(statement))
    return printer._call("torch.tensor", name, f"dtype={printer.dtype_text}", f"device={printer.device_text}")


primitive(
    "constant", vjp=lambda *_: iter(()), jvp=no_jvp, stem="table",
    spell={"numpy": _numpy, "torch": _torch, "text": lambda p, s, texts: _name(s),
           "latex": lambda p, s, texts: r"C_{\text{" + _name(s)[6:].lower() + "}}",
           "mathml": lambda p, s, texts: f"<msub><mi>C</mi><mtext>{_name(s)[6:].lower()}</mtext></msub>"}, finite=True)
