"""diagonal: the entries x[..., i, i] of the last two axes (torch.diagonal; x[arange(n), arange(n)]; a contrastive
loss's positive pairs, the diagonal of an (N, N) matrix of similarities). Its adjoint puts the cotangent back on the
diagonal, zeros elsewhere: the same primitive with key "embed" (torch.diag_embed), whose adjoint is the diagonal."""

from __future__ import annotations

from ..declare.tensor import SymbolicTensor, as_value, shape_text, traced_graph
from ..declare.trace import fail, running
from .primitive import linear_jvp, primitive
from .registry import TorchNames

EMBED = "embed"


def _shape(operands, key=""):
    shape = operands[0].shape
    return (*shape, shape[-1]) if key == EMBED else shape[:-1]


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:
        key = "" if tensor.key == EMBED else EMBED
        yield tensor.operands[0], graph.apply("diagonal", (cotangent,), stem=f"d{tensor.name}_diagonal", key=key)


def diagonal_of(x) -> SymbolicTensor:
    """The diagonal of the last two axes of x, which must be of one size (N and N: a batch's similarities)."""
    value = as_value(x, "torch.diagonal")
    if len(value.shape) < 2 or value.shape[-1] != value.shape[-2]:
        raise fail(f"torch.diagonal takes the diagonal of two axes of one size, got {shape_text(value.shape)}")
    return SymbolicTensor(traced_graph().apply("diagonal", (value,), stem=running().stem("diag")))


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1) -> SymbolicTensor:
    """torch.diagonal(x, offset, dim1, dim2), x.diagonal(): the main diagonal of the last two axes (offset 0)."""
    ndim = len(as_value(x, "torch.diagonal").shape)
    if offset != 0 or {dim1 % ndim, dim2 % ndim} != {ndim - 2, ndim - 1}:
        raise fail("torch.diagonal: symprop takes the main diagonal of the last two axes (offset 0)")
    return diagonal_of(x)


def diag(x, diagonal: int = 0) -> SymbolicTensor:
    """torch.diag(x) of a matrix (N, N): its diagonal."""
    if len(as_value(x, "torch.diag").shape) != 2 or diagonal != 0:
        raise fail("torch.diag: symprop takes the main diagonal of a matrix (a vector's diagonal matrix is not read)")
    return diagonal_of(x)


def _numpy(printer, statement, texts):
    if statement.tensor.key == EMBED:
        return f"{texts[0]}[..., None] * {printer._module_format('numpy.eye')}({texts[0]}.shape[-1], " \
               f"dtype={texts[0]}.dtype)"
    return f"{printer._module_format('numpy.diagonal')}({texts[0]}, axis1=-2, axis2=-1)"


def _torch(printer, statement, texts):
    if statement.tensor.key == EMBED:
        return printer._call("torch.diag_embed", texts[0])
    return printer._call("torch.diagonal", texts[0], "dim1=-2", "dim2=-1")


def _text(printer, statement, texts):
    return f"{'diag_embed' if statement.tensor.key == EMBED else 'diagonal'}({texts[0]})"


def _latex(printer, statement, texts):
    name = "diag" if statement.tensor.key == EMBED else "diagonal"
    return rf"\operatorname{{{name}}}\left({texts[0]}\right)"


def _mathml(printer, statement, texts):
    name = "diag" if statement.tensor.key == EMBED else "diagonal"
    return f"<mrow><mi>{name}</mi><mo>(</mo>{texts[0]}<mo>)</mo></mrow>"


primitive(
    "diagonal", shape=_shape, vjp=_vjp, jvp=linear_jvp, stem="diag", moves=True, aliases=True, read_only=True,
    spell={"numpy": _numpy, "torch": _torch, "text": _text, "latex": _latex, "mathml": _mathml},
    torch=TorchNames(functions=("torch.diagonal", "torch.diag"), methods=("diagonal", "diag"),
                     aten=("aten.diagonal.default", "aten.diag.default")),
    front={"torch.diagonal": diagonal, "diagonal": diagonal, "torch.diag": diag, "diag": diag,
           "aten.diagonal.default": diagonal, "aten.diag.default": diag}, finite=True)
