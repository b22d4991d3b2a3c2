"""slice: the entries of one axis from start to stop (x[:, 2:5]). Its adjoint puts the cotangent back where the entries
came from, zeros around it: a pad."""

from __future__ import annotations

from ..declare.tensor import SymbolicTensor, as_value, axis_of, kind_of, traced_graph
from ..declare.trace import fail, running
from ..shapes import N
from .primitive import linear_jvp, primitive, shapes_of
from .registry import TorchNames


def _shape(operands, axes, bounds):
    (axis,), (start, stop) = axes, bounds
    return tuple(stop - start if a == axis else d for a, d in enumerate(operands[0].shape))


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # zeros around the slice
        (operand,), (axis,), (start, stop) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.apply("pad", (cotangent,), stem=f"d{tensor.name}_padded", axes=(axis,),
                                   bounds=(start, operand.shape[axis] - stop))


def _code(printer, statement, texts):
    tensor = statement.tensor
    (axis,), (start, stop), full = tensor.axes, tensor.bounds, shapes_of(statement)[0][tensor.axes[0]]
    bound = f"{start if start else ''}:{stop if stop != full else ''}"
    return f"{texts[0]}[{', '.join([':'] * axis + [bound])}]"


def _latex(printer, statement, texts):
    (start, stop), axis = statement.tensor.bounds, statement.tensor.axes[0]
    rows = "rows" if axis == 0 else f"axis {axis}"
    return rf"{{{texts[0]}}}_{{[{start}:{stop}]\,\text{{{rows}}}}}"


def _mathml(printer, statement, texts):
    (start, stop), axis = statement.tensor.bounds, statement.tensor.axes[0]
    return f"<msub><mrow>{texts[0]}</mrow><mtext>[{start}:{stop}] on axis {axis}</mtext></msub>"


WHOLE = 2 ** 62  # a slice's stop from here on is the axis's end


def getitem(x, index) -> SymbolicTensor:
    """Basic indexing: slices (of any positive step) and integers, one per leading axis (and ... for the rest)."""
    value = as_value(x, "indexing")
    index = index if isinstance(index, tuple) else (index,)
    if index.count(Ellipsis) > 1:
        raise fail("indexing: at most one ...")
    if Ellipsis in index:
        i = index.index(Ellipsis)
        index = index[:i] + (slice(None),) * (len(value.shape) - len(index) + 1) + index[i + 1:]
    if len(index) > len(value.shape):
        raise fail(f"indexing: {len(index)} indices for a tensor of {len(value.shape)} dimensions")
    g, stem, dropped = traced_graph(), running().stem("sl"), []
    for axis, item in enumerate(index):
        dim = value.shape[axis]
        if isinstance(item, slice):
            if item.step not in (None, 1):
                value = _stepped(value, axis, item, stem)
                continue
            if item.start in (None, 0) and (item.stop is None or item.stop >= WHOLE):
                continue  # the whole axis (torch.export writes x[:, k]'s colon as the slice 0:2**63-1)
            if dim == N:
                raise fail("indexing: the batch axis is taken whole (:)")
            start, stop, _ = item.indices(dim)
        elif isinstance(item, int) and not isinstance(item, bool):
            if dim == N:
                raise fail("indexing: the batch axis is taken whole (:)")
            if not -dim <= item < dim:
                raise fail(f"indexing: index {item} is out of range for a dimension of size {dim}")
            start, stop = item % dim, item % dim + 1
            dropped.append(axis)
        else:
            raise fail(f"indexing with {kind_of(item)} is not supported; use slices and integers")
        if stop <= start:
            raise fail(f"indexing: the slice {item} of a dimension of size {dim} is empty")
        if (start, stop) != (0, dim):
            value = g.apply("slice", (value,), stem=stem, axes=(axis,), bounds=(start, stop))
    if dropped:
        shape = tuple(d for a, d in enumerate(value.shape) if a not in dropped)
        value = g.apply("rearrange", (value,), stem=stem, shape=shape, split=value.shape,
                        perm=tuple(range(len(value.shape))))
    return SymbolicTensor(value)


def _stepped(value, axis: int, item: slice, stem: str):
    """x[..., start:stop:step, ...] (NICE's even and odd halves, x[:, ::2]): the entries from start, up to a whole
    number of steps (zeros past the end), folded into (steps, step), and the first of each step, so that it is
    made of slices, a pad and reshapes, whose adjoints put the cotangent back at every step-th place."""
    dim = value.shape[axis]
    if not isinstance(item.step, int) or item.step < 1:
        raise fail(f"indexing: a slice's step must be a positive integer, got {item.step!r}")
    if dim == N:
        raise fail("indexing: the batch axis is taken whole (:)")
    start, stop, step = item.indices(dim)
    count = len(range(start, stop, step))
    if not count:
        raise fail(f"indexing: the slice {item} of a dimension of size {dim} is empty")
    g, end = traced_graph(), min(dim, start + count * step)
    if (start, end) != (0, dim):
        value = g.apply("slice", (value,), stem=stem, axes=(axis,), bounds=(start, end))
    if end - start < count * step:
        value = g.apply("pad", (value,), axes=(axis,), bounds=(0, count * step - (end - start)))
    shape = (*value.shape[:axis], count, step, *value.shape[axis + 1:])
    folded = SymbolicTensor(value).reshape(*(-1 if d == N else d for d in shape))
    return along_axis(folded, axis + 1, 0).value


def along_axis(x, dim: int, item):
    """x[..., item, ...] with `item` (a slice or an index) on axis `dim`."""
    ndim = len(as_value(x, "indexing").shape)
    axis = axis_of(dim, ndim, "indexing")
    return getitem(x, (slice(None),) * axis + (item,))


def _aten_slice(x, dim=0, start=None, end=None, step=1):
    return along_axis(x, dim, slice(start, end, step))


def _aten_select(x, dim, index):
    return along_axis(x, dim, index)


def split(x, split_size_or_sections, dim: int = 0) -> tuple:
    """x.split(size, dim) (or a list of sizes): consecutive slices along dim, the last one shorter if need be."""
    ndim = len(as_value(x, ".split").shape)
    axis = axis_of(dim, ndim, ".split")
    length = as_value(x, ".split").shape[axis]
    if length == N:
        raise fail(".split: the batch axis is taken whole")
    if isinstance(split_size_or_sections, int) and not isinstance(split_size_or_sections, bool):
        if split_size_or_sections < 1:
            raise fail(f".split: the size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, length - start) for start in range(0, length, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length or any(not isinstance(n, int) or n < 1 for n in sizes):
            raise fail(f".split: sizes {sizes} do not add up to the axis's {length}")
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return tuple(along_axis(x, axis, slice(start, start + size)) for start, size in zip(starts, sizes, strict=True))


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """x.chunk(n, dim): n slices of ceil(length / n) along dim (fewer where they run out), as torch.chunk."""
    axis = axis_of(dim, len(as_value(x, ".chunk").shape), ".chunk")
    length = as_value(x, ".chunk").shape[axis]
    if length == N or not isinstance(chunks, int) or chunks < 1:
        raise fail(".chunk: give a positive number of chunks of an axis other than the batch axis")
    return split(x, -(-length // chunks), axis)


def narrow(x, dim: int, start: int, length: int) -> SymbolicTensor:
    """x.narrow(dim, start, length): `length` entries along dim from `start` (counted from the end where negative)."""
    axis = axis_of(dim, len(as_value(x, ".narrow").shape), ".narrow")
    size = as_value(x, ".narrow").shape[axis]
    if size == N or not all(isinstance(n, int) and not isinstance(n, bool) for n in (start, length)):
        raise fail(".narrow: give a start and a length of an axis other than the batch axis")
    start = start + size if start < 0 else start
    if not 0 <= start <= start + length <= size:
        raise fail(f".narrow: {length} entries from {start} do not fit an axis of {size}")
    return along_axis(x, axis, slice(start, start + length))


def unbind(x, dim: int = 0) -> tuple:
    """x.unbind(dim): each entry along dim, that axis dropped (an unrolled RNN's steps)."""
    axis = axis_of(dim, len(as_value(x, ".unbind").shape), ".unbind")
    length = as_value(x, ".unbind").shape[axis]
    if length == N:
        raise fail(".unbind: the batch axis is taken whole")
    return tuple(along_axis(x, axis, i) for i in range(length))


FRONT = {"__getitem__": getitem, "split": split, "chunk": chunk, "unbind": unbind, "narrow": narrow,
         "torch.split": split, "torch.chunk": chunk, "torch.unbind": unbind, "torch.narrow": narrow,
         "aten.slice.Tensor": _aten_slice,
         "aten.select.int": _aten_select, "aten.split.Tensor": split, "aten.split_with_sizes.default": split,
         "aten.chunk.default": chunk, "aten.unbind.int": unbind, "aten.narrow.default": narrow}
primitive(
    "slice", shape=_shape, vjp=_vjp, jvp=linear_jvp, stem="sl", moves=True, aliases=True,
    spell={"numpy": _code, "torch": _code, "text": _code, "latex": _latex, "mathml": _mathml},
    torch=TorchNames(functions=("torch.split", "torch.chunk", "torch.unbind", "torch.narrow"),
                     methods=("__getitem__", "split", "chunk", "unbind", "narrow"),
                     aten=tuple(name for name in FRONT if name.startswith("aten."))),
    front=FRONT, finite=True)
