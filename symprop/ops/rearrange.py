"""rearrange: entries moved, none changed: a reshape into single axes, a permutation of those, and a reshape into the
result's shape (x.view, x.transpose, x.permute, x.flatten, x.squeeze, x.unsqueeze, x.T). Its adjoint is the inverse
rearrangement. Where its operand is an expression, the plan computes it into its own array and views that."""

from __future__ import annotations

import math

import sympy as sp

from ..declare.module import Module
from ..declare.options import Table
from ..declare.tensor import SymbolicTensor, as_value, axis_of, shape_text, traced_graph
from ..declare.trace import fail, running
from ..shapes import N, size
from .primitive import linear_jvp, primitive, shapes_of
from .registry import TorchNames


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # the inverse rearrangement
        (operand,) = tensor.operands
        inverse = tuple(sorted(range(len(tensor.perm)), key=tensor.perm.__getitem__))
        moved = tuple(tensor.split[a] for a in tensor.perm)
        yield operand, graph.apply("rearrange", (cotangent,), stem="d" + graph.name_of(operand.expr, tensor.name),
                                   shape=operand.shape, split=moved, perm=inverse)


def _code(permute: str, contiguous: str = "np.ascontiguousarray({})"):
    """NumPy's and torch's: .reshape, then .transpose (numpy) or .permute (torch), then .reshape, each where needed;
    copied into an array of its own in that order where the plan says (key "contiguous": einsum's layout rule)."""

    def spell(printer, statement, texts):
        tensor, text = statement.tensor, texts[0]
        if tuple(tensor.split) != tuple(shapes_of(statement)[0]):
            text += f".reshape{printer.dims_text(tensor.split)}"
        if tensor.perm != tuple(range(len(tensor.perm))):
            text += f".{permute}{tuple(tensor.perm)}"
        if tuple(tensor.split[a] for a in tensor.perm) != tuple(tensor.shape):
            text += f".reshape{printer.dims_text(tensor.shape)}"
        return contiguous.format(text) if tensor.key == "contiguous" else text

    return spell


_THIN = r"\,"  # a thin space between words in \operatorname


def _book(named):
    """In a book: nothing, where only an axis of size 1 is dropped or added; else axes transposed, attention's heads
    split or merged (between 3 and 4 axes), or axes flattened or unflattened (an image's pixels, a window's
    entries)."""

    def spell(printer, statement, texts):
        shape, operand = statement.tensor.shape, shapes_of(statement)[0]
        if [d for d in shape if d != 1] == [d for d in operand if d != 1]:
            return texts[0]
        splits = len(shape) > len(operand)
        if len(shape) == len(operand):
            return named(printer, "transpose", texts[0])
        if {len(shape), len(operand)} == {3, 4}:
            return named(printer, "split heads" if splits else "merge heads", texts[0])
        return named(printer, "unflatten" if splits else "flatten", texts[0])

    return spell


# -- torch's names -------------------------------------------------------------------------------------------------
def permute(x, *dims) -> SymbolicTensor:
    value = as_value(x, ".permute")
    ndim = len(value.shape)
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    perm = tuple(axis_of(d, ndim, ".permute") for d in dims)
    if sorted(perm) != list(range(ndim)):
        raise fail(f".permute{dims}: not a permutation of the {ndim} dimensions")
    if perm == tuple(range(ndim)):
        return SymbolicTensor(value)
    shape = tuple(value.shape[a] for a in perm)
    return SymbolicTensor(traced_graph().apply("rearrange", (value,), stem=running().stem("tr"), shape=shape,
                                               split=value.shape, perm=perm))


def transpose(x, dim0, dim1) -> SymbolicTensor:
    ndim = len(as_value(x, ".transpose").shape)
    a, b = axis_of(dim0, ndim, ".transpose"), axis_of(dim1, ndim, ".transpose")
    perm = list(range(ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, tuple(perm))


def t(x) -> SymbolicTensor:
    ndim = len(as_value(x, ".T").shape)
    if ndim > 2:
        raise fail(".T reverses the axes of a matrix; use .transpose(dim0, dim1) for more dimensions")
    return transpose(x, 0, -1) if ndim == 2 else x


def numpy_t(x) -> SymbolicTensor:
    """x.T as torch.export records it (aten.numpy_T): its axes reversed, a matrix's transpose."""
    return permute(x, *reversed(range(len(as_value(x, ".T").shape))))


def reshape(x, *shape) -> SymbolicTensor:
    value = as_value(x, ".reshape")
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = tuple(int(d) if isinstance(d, sp.Integer) else d for d in shape)  # x.size(0) is the batch size, N

    def valid(d) -> bool:
        return (isinstance(d, sp.Expr) and d.has(N)) or (isinstance(d, int) and not isinstance(d, bool) and
                                                          (d >= 1 or d == -1))

    if not all(valid(d) for d in shape) or list(shape).count(-1) > 1:
        raise fail(f".reshape{shape_text(shape)}: give positive sizes, and at most one -1")
    known = size([d for d in shape if d != -1])
    total = size(value.shape)
    if -1 in shape:
        rest = sp.simplify(total / known)
        if not (rest.is_Integer or rest == N or (rest / N).is_Integer):
            raise fail(f".reshape{shape_text(shape)}: {shape_text(value.shape)} does not split that way")
        shape = tuple((int(rest) if rest.is_Integer else rest) if d == -1 else d for d in shape)
    elif sp.simplify(size(shape) - total) != 0:
        raise fail(f".reshape{shape_text(shape)}: {shape_text(value.shape)} has a different number of entries "
                   "(keep the batch axis with -1)")
    if tuple(shape) == tuple(value.shape):
        return SymbolicTensor(value)
    return SymbolicTensor(traced_graph().apply("rearrange", (value,), stem=running().stem("rs"), shape=tuple(shape),
                                               split=value.shape, perm=tuple(range(len(value.shape)))))


def flatten(x, start_dim=0, end_dim=-1) -> SymbolicTensor:
    shape = as_value(x, ".flatten").shape
    start, end = axis_of(start_dim, len(shape), ".flatten"), axis_of(end_dim, len(shape), ".flatten")
    return reshape(x, (*shape[:start], size(shape[start:end + 1]), *shape[end + 1:]))


def squeeze(x, dim=None) -> SymbolicTensor:
    shape = as_value(x, ".squeeze").shape
    axes = range(len(shape)) if dim is None else (axis_of(dim, len(shape), ".squeeze"),)
    return reshape(x, tuple(d for a, d in enumerate(shape) if not (a in axes and d == 1)))


def unsqueeze(x, dim) -> SymbolicTensor:
    shape = as_value(x, ".unsqueeze").shape
    axis = axis_of(dim, len(shape) + 1, ".unsqueeze")
    return reshape(x, (*shape[:axis], 1, *shape[axis:]))


def unflatten(x, dim, sizes) -> SymbolicTensor:
    shape = as_value(x, ".unflatten").shape
    axis = axis_of(dim, len(shape), ".unflatten")
    return reshape(x, (*shape[:axis], *sizes, *shape[axis + 1:]))


class Flatten(Module):
    """torch.nn.Flatten: every axis from start_dim to end_dim merged into one (by default all but the batch)."""

    kind, toml_keys = "flatten", ()

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    @classmethod
    def from_torch(cls, module):
        return cls(module.start_dim, module.end_dim)

    @classmethod
    def from_toml(cls, table: Table, width):
        return cls()

    def output_width(self, width) -> int:
        return math.prod(width) if isinstance(width, tuple) else width

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def torch_twin(self):
        import torch

        return torch.nn.Flatten(self.start_dim, self.end_dim)

    def describe(self) -> str:
        default = (self.start_dim, self.end_dim) == (1, -1)
        return "Flatten()" if default else f"Flatten({self.start_dim}, {self.end_dim})"


FRONT = {"reshape": reshape, "view": reshape, "unflatten": unflatten, "transpose": transpose, "permute": permute,
         "t": t, "flatten": flatten, "squeeze": squeeze, "unsqueeze": unsqueeze}
ATEN = {"aten.view.default": reshape, "aten.reshape.default": reshape, "aten._unsafe_view.default": reshape,
        "aten.permute.default": permute, "aten.transpose.int": transpose, "aten.t.default": t,
        "aten.numpy_T.default": numpy_t,
        "aten.flatten.using_ints": flatten, "aten.squeeze.dim": squeeze, "aten.squeeze.default": squeeze,
        "aten.unsqueeze.default": unsqueeze, "aten.unflatten.int": unflatten}
primitive(
    "rearrange", vjp=_vjp, jvp=linear_jvp, stem="rs", view=True, moves=True,
    spell={"numpy": _code("transpose"), "torch": _code("permute", "{}.contiguous()"), "text": _code("transpose"),
           "latex": _book(lambda p, what, text: rf"\operatorname{{{_THIN.join(what.split())}}}\left({text}\right)"),
           "mathml": _book(lambda p, what, text: p.named_call(what, text))},
    torch=TorchNames(functions=tuple(f"torch.{name}" for name in FRONT if name != "view"), methods=tuple(FRONT),
                     module="Flatten", aten=tuple(ATEN)), layer_class=Flatten,
    front={**FRONT, **{f"torch.{name}": function for name, function in FRONT.items()}, **ATEN}, finite=True)
