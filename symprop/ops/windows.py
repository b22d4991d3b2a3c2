"""windows: the patches a kernel slides over, x[n, c, i·s + k·d, ...] at (n, c, i, ..., k, ...): each of the operand's
sliding axes becomes the patches' positions along it, and the kernel's offsets become new axes at the end. A
convolution is one contraction of these windows with its kernel (einsum "ncxyij,ocij->noxy"), and a pooling a
reduction over their last axes, so that their derivatives follow from the contraction's index spec and the
reduction's adjoint.

fold: the adjoint of windows, and its transpose: each window's entries added back where they were read (col2im).
The input's δ of a convolution is the fold of δ times the kernel: a transposed convolution, as a book writes it. The
adjoint of a fold is windows again."""

from __future__ import annotations

from .primitive import linear_jvp, primitive
from .registry import Helper


def window_count(size: int, kernel: int, stride: int, dilation: int) -> int:
    """How many windows fit along an axis of `size` entries (torch's output size, without padding): 0 if none."""
    reach = dilation * (kernel - 1) + 1
    return max(0, (size - reach) // stride + 1)


def torch_sizes(window: tuple) -> tuple:
    """(kernel, stride, dilation) of a window as torch's calls take them: one number where every axis has the same."""
    def one(values: tuple):
        return values[0] if len(set(values)) == 1 else values

    return tuple(one(tuple(part[k] for part in window)) for k in range(3))


def sliding(graph, value, axes: tuple, window: tuple, stem: str = "win"):
    """The windows of `value` along `axes`, with (size, stride, dilation) along each (see the module)."""
    return graph.apply("windows", (value,), stem=stem, axes=tuple(axes), window=tuple(window))


def _shape(operands, axes, window):
    shape = list(operands[0].shape)
    for axis, (size, stride, dilation) in zip(axes, window, strict=True):
        shape[axis] = window_count(shape[axis], size, stride, dilation)
    return (*shape, *(size for size, _, _ in window))


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # each window's δ added back where its entries were read
        (operand,) = tensor.operands
        yield operand, graph.apply("fold", (cotangent,), stem="d" + graph.name_of(operand.expr, tensor.name),
                                   shape=operand.shape, axes=tensor.axes, window=tensor.window)


def _steps(axes: tuple, strides: tuple, dilations: tuple, ndim: int) -> str:
    """[::stride] along the sliding axes and [::dilation] along the kernel's, where either is not 1."""
    steps = [":"] * (ndim + len(axes))
    for k, (axis, stride, dilation) in enumerate(zip(axes, strides, dilations, strict=True)):
        steps[axis] = f"::{stride}" if stride != 1 else ":"
        steps[ndim + k] = f"::{dilation}" if dilation != 1 else ":"
    while steps and steps[-1] == ":":
        steps.pop()
    return f"[{', '.join(steps)}]" if steps else ""


def _parts(tensor):
    """(reach, strides, dilations) along the tensor's axes: a dilated kernel reaches d·(k − 1) + 1 entries."""
    return (tuple(dilation * (size - 1) + 1 for size, _, dilation in tensor.window),
            tuple(stride for _, stride, _ in tensor.window), tuple(dilation for _, _, dilation in tensor.window))


def _numpy(printer, statement, texts):
    """The windows at stride 1 (sliding_window_view), then every stride-th and every dilation-th entry: views, nothing
    copied."""
    tensor, ndim = statement.tensor, len(statement.tensor.operands[0].shape)
    reach, strides, dilations = _parts(tensor)
    view = printer._module_format("numpy.lib.stride_tricks.sliding_window_view")
    one = len(reach) == 1
    return f"{view}({texts[0]}, {reach[0] if one else reach}, axis={tensor.axes[0] if one else tensor.axes})" + \
        _steps(tensor.axes, strides, dilations, ndim)


def _torch(printer, statement, texts):
    """Tensor.unfold along each axis, at the stride (each a view, its windows on a new last axis), then every
    dilation-th entry."""
    tensor, ndim = statement.tensor, len(statement.tensor.operands[0].shape)
    reach, strides, dilations = _parts(tensor)
    text = texts[0] + "".join(f".unfold({axis}, {r}, {stride})"
                              for axis, r, stride in zip(tensor.axes, reach, strides, strict=True))
    return text + _steps(tensor.axes, (1,) * len(strides), dilations, ndim)


NUMPY_FOLD = Helper("fold", '''
def fold(windows, axes, sizes, window):
    """The adjoint of taking windows: each window's entries added back where they were read, into an array of `sizes`
    along `axes` (one pass per kernel offset, over all windows at once; windows that tile the array, as a pooling's
    do, are one rearrangement)."""
    shape = list(windows.shape[:windows.ndim - len(window)])
    for axis, size in zip(axes, sizes):
        shape[axis] = size
    if all(stride == size and dilation == 1 for size, stride, dilation in window):
        order, covered = [], []
        for axis in range(len(shape)):
            order += [axis, len(shape) + axes.index(axis)] if axis in axes else [axis]
            covered.append(windows.shape[axis] * window[axes.index(axis)][0] if axis in axes else shape[axis])
        out = np.empty(shape, dtype=windows.dtype) if covered == shape else np.zeros(shape, dtype=windows.dtype)
        out[tuple(slice(0, n) for n in covered)] = windows.transpose(order).reshape(covered)
        return out
    out = np.zeros(shape, dtype=windows.dtype)
    if len(window) == 1 or axes[-1] != len(shape) - 1:
        return _add_windows(out, windows, axes, window)
    # Grouped by the offset along the last axis: each group's windows added up in rows as long as the windows' along
    # it (contiguous passes), then added into out once, shifted by that offset. One pass over out's short rows a group
    # instead of one an offset: LeNet's second convolution, 5 where 25.
    rows_shape = list(shape)
    rows_shape[-1] = windows.shape[axes[-1]]
    size, stride, dilation = window[-1]
    for k in range(size):
        rows = _add_windows(np.zeros(rows_shape, dtype=windows.dtype), windows[..., k], axes[:-1], window[:-1])
        start = k * dilation
        out[..., start:start + stride * (rows_shape[-1] - 1) + 1:stride] += rows
    return out


def _add_windows(out, windows, axes, window):
    """out with each window's entries added where they were read, for every kernel offset that `window` spans."""
    offsets = [()]
    for size, _, _ in window:
        offsets = [offset + (k,) for offset in offsets for k in range(size)]
    for offset in offsets:
        where = [slice(None)] * out.ndim
        for axis, k, (_, stride, dilation) in zip(axes, offset, window):
            start = k * dilation
            where[axis] = slice(start, start + stride * (windows.shape[axis] - 1) + 1, stride)
        out[tuple(where)] += windows[(Ellipsis, *offset)]
    return out
''')
TORCH_FOLD = Helper("fold", NUMPY_FOLD.source.replace("np.zeros(", "torch.zeros(").replace("np.empty(", "torch.empty(")
                    .replace("dtype=windows.dtype)", "dtype=windows.dtype, device=windows.device)")
                    .replace("windows.transpose(order)", "windows.permute(order)")
                    .replace("windows.ndim", "windows.dim()").replace("out.ndim", "out.dim()"))


def _fold_code(helper):
    def spell(printer, statement, texts):
        tensor = statement.tensor
        sizes = tuple(tensor.shape[axis] for axis in tensor.axes)
        return f"{printer.use(helper)}({texts[0]}, {tensor.axes}, {sizes}, {tensor.window})"

    return spell


def _fold_vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # a fold's transpose is windows
        (operand,) = tensor.operands
        yield operand, graph.apply("windows", (cotangent,), stem="d" + graph.name_of(operand.expr, tensor.name),
                                   axes=tensor.axes, window=tensor.window)


def _letters(tensor, ndim: int) -> tuple[list[str], list[str], list[str]]:
    """A book's indices: the windowed array's `ndim` axes (n, c, then x, y at the sliding axes), the windows'
    positions along the sliding axes (x, y) and the kernel's offsets (i, j)."""
    others = iter("ncabe")
    positions, offsets = list("xyz"[:len(tensor.axes)]), list("ijk"[:len(tensor.axes)])
    axes = [positions[tensor.axes.index(a)] if a in tensor.axes else next(others) for a in range(ndim)]
    return axes, positions, offsets


def _step(factor: int, letter: str) -> str:
    return letter if factor == 1 else f"{factor}{letter}"


def _book(printer, statement, texts):
    """P_{n,c,x,y,i,j} = X_{n,c, s·x + d·i, s·y + d·j}: each window position's entries, by kernel offset."""
    tensor = statement.tensor
    axes, positions, offsets = _letters(tensor, len(tensor.operands[0].shape))
    read = []
    for a, letter in enumerate(axes):
        if a in tensor.axes:
            k = tensor.axes.index(a)
            _, stride, dilation = tensor.window[k]
            read.append(f"{_step(stride, positions[k])} + {_step(dilation, offsets[k])}")
        else:
            read.append(letter)
    return printer.index_sum([], printer.indexed(texts[0], read), axes + offsets)


def _fold_book(printer, statement, texts):
    """X̄_{n,c,u,v} = Σ over (x, i) with s·x + d·i = u, (y, j) likewise, of P̄_{n,c,x,y,i,j}: each entry gathers the
    window entries that read it (a transposed convolution's form)."""
    tensor = statement.tensor
    axes, positions, offsets = _letters(tensor, len(tensor.shape))
    targets = list("uvw"[:len(tensor.axes)])
    where = [f"{_step(s, x)} + {_step(d, i)} = {u}"
             for x, i, u, (_, s, d) in zip(positions, offsets, targets, tensor.window, strict=True)]
    out = [targets[tensor.axes.index(a)] if a in tensor.axes else letter for a, letter in enumerate(axes)]
    return printer.index_sum(where, printer.indexed(texts[0], axes + offsets), out)


def _described(tensor) -> str:
    sizes = tuple(size for size, _, _ in tensor.window)
    strides = tuple(stride for _, stride, _ in tensor.window)
    dilations = tuple(dilation for _, _, dilation in tensor.window)
    return f"axes={tensor.axes}, size={sizes}" + (f", stride={strides}" if set(strides) != {1} else "") + \
        (f", dilation={dilations}" if set(dilations) != {1} else "")


primitive(
    "windows", shape=_shape, vjp=_vjp, jvp=linear_jvp, stem="win", view=True, read_only=True, copied=True,
    latex_stem="P",
    spell={"numpy": _numpy, "torch": _torch,
           "text": lambda p, s, texts: f"windows({texts[0]}, {_described(s.tensor)})",
           "latex": _book, "mathml": _book}, finite=True)
primitive(
    "fold", vjp=_fold_vjp, jvp=linear_jvp, stem="folded", owns_array=True, helpers=(NUMPY_FOLD, TORCH_FOLD),
    batch_rows=lambda tensor: None if 0 in tensor.axes else "kept",
    spell={"numpy": _fold_code(NUMPY_FOLD), "torch": _fold_code(TORCH_FOLD),
           "text": lambda p, s, texts: f"fold({texts[0]}, {_described(s.tensor)})",
           "latex": _fold_book, "mathml": _fold_book}, finite=True)
