"""max_pool1d, max_pool2d and their adaptive forms: the largest entry of each window; F.max_pool*, nn.MaxPool*,
nn.AdaptiveMaxPool* and ATen's. Each window (windows.py) is flattened and reduced by a max whose gradient goes to its
first largest entry, as torch's max pooling routes δ (at ties, to the first in row-major order): δ one-hot at the
arg-max, folded back onto the input. Padding is −∞, which no max takes."""

from __future__ import annotations

import math

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, positive, short
from ..declare.tensor import SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..graph import Graph, Value
from ..graph.ir import Tensor
from ..plan.uses import Uses, unused
from ..program import Statement
from .conv import built, image_shape, reshaped, spatial, spatial_option
from .max import reduce_max
from .pad import pad_axes
from .registry import Call, Helper, TorchNames, call, defop, lookup, plan_rule
from .windows import sliding, torch_sizes, window_count

SIZES = {1: "length", 2: "height, width"}


def pooled(g: Graph, x: Value, kernel: tuple, stride: tuple, pads: tuple, dilation: tuple, reduce, name: str,
           where: str, fill: str = "") -> Value:
    """Each window of x (batch, channels, *positions), flattened and reduced by `reduce(graph, windows, stem)` over
    its last axis (kept as 1), in the shape (batch, channels, *window positions)."""
    dims = len(kernel)
    axes = tuple(range(len(x.shape) - dims, len(x.shape)))
    padded = pad_axes(g, x, axes, pads, fill)
    counts = [window_count(padded.shape[a], k, s, d) for a, k, s, d in zip(axes, kernel, stride, dilation,
                                                                             strict=True)]
    if 0 in counts:
        raise fail(f"{where}: the input {shape_text(x.shape)} is smaller than the window {shape_text(kernel)}")
    tag = name[1:] if name[0] == "h" else "_" + name
    windows = sliding(g, padded, axes, tuple(zip(kernel, stride, dilation, strict=True)), stem=f"win{tag}")
    flat = reshaped(g, windows, (*windows.shape[:-dims], math.prod(kernel)), f"patch{tag}")
    return reshaped(g, reduce(g, flat, f"top{tag}"), windows.shape[:-dims], name)


def _largest(g: Graph, flat: Value, stem: str) -> Value:
    return reduce_max(g, flat, len(flat.shape) - 1, stem=stem, first=True)


def checked_input(input, dims: int, where: str) -> Value:
    x = symbolic(input, where)
    if len(x.shape) != dims + 2:
        raise fail(f"{where} expects (batch, channels, {SIZES[dims]}), got {shape_text(x.shape)}")
    return x


def max_pooling(dims: int):
    """torch's F.max_pool1d or F.max_pool2d."""
    where = f"F.max_pool{dims}d"

    def functional(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        input = resolved(input)
        if in_torch(input):
            return torch_function(f"torch.nn.functional.max_pool{dims}d")(
                input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=return_indices)
        if return_indices:
            raise fail(f"{where}: return_indices=True is not supported by symprop (the indices are not a value it "
                       "differentiates)")
        x = checked_input(input, dims, where)
        kernel = spatial(kernel_size, dims, "kernel_size", where)
        strides = kernel if stride is None or stride == [] or stride == () else spatial(stride, dims, "stride", where)
        dilations = spatial(dilation, dims, "dilation", where)
        widths = spatial(padding, dims, "padding", where, least=0)
        reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
        if any(2 * p > k for p, k in zip(widths, kernel, strict=True)):
            raise fail(f"{where}: padding {widths} must be at most half the kernel {kernel} (as torch requires)")
        pads = []
        for size, p, r, s in zip(x.shape[2:], widths, reach, strides, strict=True):
            after = p
            if ceil_mode:  # one more window where part of one is left over, if it starts inside the input or the
                #            left padding (torch's rule): the −∞ padding after it never wins a max
                count = -(-(size + 2 * p - r) // s) + 1
                if (count - 1) * s >= size + p:
                    count -= 1
                after = max(p, (count - 1) * s + r - size - p)
            pads.append((p, after))
        trace = running()
        return SymbolicTensor(pooled(trace.graph, x, kernel, strides, tuple(pads), dilations, _largest,
                                     trace.stem("h"), where, fill="-inf"))

    functional.__name__ = functional.__qualname__ = f"max_pool{dims}d"
    return functional


def adaptive_windows(size: int, out: int, where: str) -> tuple[int, int]:
    """(kernel, stride) of adaptive pooling from `size` entries to `out` where out divides size; refused otherwise."""
    if out < 1 or size % out:
        raise fail(f"{where}: output size {out} from {size} entries: symprop pools adaptively where the output size "
                   "divides the input's (its windows are then equal)")
    return size // out, size // out


def output_sizes(output_size, x: Value, dims: int, where: str) -> tuple:
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * dims
    if len(sizes) != dims or any(s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1)
                                 for s in sizes):
        raise fail(f"{where}: output_size must be a positive integer or {dims} of them (None keeps a size), got "
                   f"{short(output_size)}")
    return tuple(size if out is None else out for out, size in zip(sizes, x.shape[2:], strict=True))


def adaptive_max_pooling(dims: int):
    """torch's F.adaptive_max_pool1d or F.adaptive_max_pool2d."""
    where = f"F.adaptive_max_pool{dims}d"

    def functional(input, output_size, return_indices=False):
        input = resolved(input)
        if in_torch(input):
            return torch_function(f"torch.nn.functional.adaptive_max_pool{dims}d")(input, output_size,
                                                                                    return_indices)
        if return_indices:
            raise fail(f"{where}: return_indices=True is not supported by symprop")
        x = checked_input(input, dims, where)
        kernel, stride = zip(*(adaptive_windows(size, out, where)
                               for size, out in zip(x.shape[2:], output_sizes(output_size, x, dims, where),
                                                    strict=True)), strict=True)
        trace = running()
        return SymbolicTensor(pooled(trace.graph, x, kernel, stride, ((0, 0),) * dims, (1,) * dims, _largest,
                                     trace.stem("h"), where))

    functional.__name__ = functional.__qualname__ = f"adaptive_max_pool{dims}d"
    return functional


def pool_layer(name: str, kind: str, functional, options: tuple, doc: str, output_shape) -> type:
    """An nn pooling layer: its options (name, default) as torch's constructor takes them, passed to `functional`;
    `output_shape(options, (channels, *positions))`, for specs."""
    dims = int(name[-2])

    class Pool(Module):
        toml_keys = tuple(option for option, _ in options if option != "return_indices")

        def __init__(self, *args, **kwargs):
            super().__init__()
            names = [option for option, _ in options]
            if len(args) > len(names) or set(kwargs) - set(names):
                raise fail(f"{name} takes {', '.join(names)}")
            values = dict(options) | dict(zip(names, args, strict=False)) | kwargs
            if any(value is REQUIRED for value in values.values()):
                raise fail(f"{name}: give {names[0]}")
            self.options = values

        @classmethod
        def from_torch(cls, module):
            return cls(**{option: getattr(module, option) for option, _ in options if hasattr(module, option)})

        @classmethod
        def from_toml(cls, table: Table, width):
            image_shape(width, dims, kind)
            values = {}
            for option, default in options:
                if option == "return_indices":
                    continue
                check = flag if isinstance(default, bool) else positive if option == "divisor_override" else \
                    spatial_option(dims, 0 if option == "padding" else 1)
                values[option] = table.get(option, check) if default is REQUIRED else \
                    table.get(option, check, default)
            return built(lambda: cls(**values))

        def output_width(self, width) -> tuple:
            return (width[0], *output_shape(self.options, width))

        def forward(self, x):
            return functional(x, *self.options.values())

        def torch_twin(self):
            import torch

            return getattr(torch.nn, name)(**self.options)

        def describe(self) -> str:
            first, *rest = options
            shown = [repr(self.options[first[0]])] + [f"{option}={self.options[option]!r}" for option, default in rest
                                                      if self.options[option] != default]
            return f"{name}({', '.join(shown)})"

    Pool.__name__ = Pool.__qualname__ = name
    Pool.__doc__, Pool.kind = doc, kind
    return Pool


REQUIRED = object()
max_pool1d, max_pool2d = max_pooling(1), max_pooling(2)
adaptive_max_pool1d, adaptive_max_pool2d = adaptive_max_pooling(1), adaptive_max_pooling(2)
MAX_OPTIONS = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
               ("return_indices", False))


def _indices_refused(dims: int):
    def refuse(*args, **kwargs):
        raise fail(f"MaxPool{dims}d(return_indices=True) (or F.max_pool{dims}d's) is not supported by symprop: the "
                   "indices are not a value it differentiates")

    return refuse


def _with_indices(functional):
    """ATen's max pooling with indices, read where only its values are used: (values, None)."""
    return lambda *args: (functional(*args), None)


def window_sizes(options: dict, width: tuple, dilated: bool = True) -> tuple:
    """A pooling's output positions along each axis, by torch's formula (ceil_mode's last window included)."""
    dims = len(width) - 1
    kernel = spatial(options["kernel_size"], dims, "kernel_size", "pooling")
    stride = kernel if options["stride"] in (None, [], ()) else spatial(options["stride"], dims, "stride", "pooling")
    padding = spatial(options["padding"], dims, "padding", "pooling", least=0)
    dilation = spatial(options.get("dilation", 1), dims, "dilation", "pooling") if dilated else (1,) * dims
    sizes = []
    for n, k, s, p, d in zip(width[1:], kernel, stride, padding, dilation, strict=True):
        span = n + 2 * p - d * (k - 1) - 1
        count = (-(-span // s) if options.get("ceil_mode") else span // s) + 1
        sizes.append(count - 1 if options.get("ceil_mode") and (count - 1) * s >= n + p else count)
    return tuple(sizes)


def adaptive_sizes(options: dict, width: tuple) -> tuple:
    out = options["output_size"]
    out = tuple(out) if isinstance(out, (tuple, list)) else (out,) * (len(width) - 1)
    return tuple(n if o is None else o for o, n in zip(out, width[1:], strict=True))


for _dims, _max, _adaptive in ((1, max_pool1d, adaptive_max_pool1d), (2, max_pool2d, adaptive_max_pool2d)):
    _layer = pool_layer(f"MaxPool{_dims}d", f"max_pool{_dims}d", _max, MAX_OPTIONS, f"torch.nn.MaxPool{_dims}d: the "
                        "largest entry of each window.", window_sizes)
    defop(f"max_pool{_dims}d", layer=_layer, functional=_max,
          torch=TorchNames((f"torch.nn.functional.max_pool{_dims}d", f"torch.max_pool{_dims}d"), (),
                           f"MaxPool{_dims}d", (f"aten.max_pool{_dims}d.default",
                                                f"aten.max_pool{_dims}d_with_indices.default")),
          front={f"aten.max_pool{_dims}d_with_indices.default": _indices_refused(_dims)})
    _layer = pool_layer(f"AdaptiveMaxPool{_dims}d", f"adaptive_max_pool{_dims}d", _adaptive,
                        (("output_size", REQUIRED), ("return_indices", False)),
                        f"torch.nn.AdaptiveMaxPool{_dims}d: the largest entry of each of output_size windows.",
                        adaptive_sizes)
    defop(f"adaptive_max_pool{_dims}d", layer=_layer, functional=_adaptive,
          torch=TorchNames((f"torch.nn.functional.adaptive_max_pool{_dims}d",), (), f"AdaptiveMaxPool{_dims}d",
                           (f"aten.adaptive_max_pool{_dims}d.default",)),
          front={f"aten.adaptive_max_pool{_dims}d.default": _with_indices(_adaptive)})


# -- one call each, where the backend has them: torch's max pooling and its adjoint -----------------------------------
# Max pooling is derived as windows, a max over each (flattened) window, and for δ the one-hot of its arg-max folded
# back. Torch's pooling kernel computes the arg-max once, as indices into each channel's plane:
#   argmax(windows(x)), max(...)      -> pair = F.max_pool2d(x, ..., return_indices=True), in the forward pass: the
#                                        maxima and the indices, from one call; top = pair[0], index = pair[1]
#                                        (top alone is F.max_pool2d(x, ...), where δ is not needed)
#   fold(δ·onehot(argmax(...)))       -> δ scattered to index
# (no padding and no ceil_mode, which pad the windows' array).
def _torch_call(printer, statement, texts, into):
    info = statement.tensor
    dims = len(info.window)
    kernel, stride, dilation = torch_sizes(info.window)
    options = [str(kernel)] + ([f"stride={stride}"] if stride != kernel else []) + \
        ([f"dilation={dilation}"] if dilation != 1 else [])
    pool = f"torch.nn.functional.max_pool{dims}d"
    if info.key == "forward":  # texts: x
        return printer._call(pool, texts[0], *options) + "[..., None]"
    if info.key == "pair":  # texts: x
        return printer._call(pool, texts[0], *options, "return_indices=True")
    if info.key in ("gather", "index"):  # texts: the pair
        return f"{texts[0]}[0][..., None]" if info.key == "gather" else f"{texts[0]}[1]"
    channels, *sizes = statement.shape[1:]  # scatter: texts δ, index
    return f"{texts[0]}.new_zeros(({texts[0]}.shape[0], {channels}, {math.prod(sizes)})).scatter_add_(2, " \
        f"{texts[1]}.flatten(2), {texts[0]}.flatten(2)).view(-1, {', '.join(map(str, statement.shape[1:]))})"


# NumPy has no pooling kernel: each kernel offset's entries of every window are one strided view of x, so the arg-max
# with the max, and the scatter of δ, each take one pass per offset over whole planes (a window flattened into a short
# last axis would be copied, and reduced, arg-maxed and one-hot-encoded four entries at a time).
NUMPY_WINDOW_ENTRIES = Helper("window_entries", '''
def window_entries(x, window, positions):
    """Each kernel offset's entries of every window of x (over its axes after batch and channels), in the order of
    the window's flattened entries: one strided view each."""
    offsets = [()]
    for size, _, _ in window:
        offsets = [offset + (k,) for offset in offsets for k in range(size)]
    views = []
    for offset in offsets:
        where = [slice(None), slice(None)]
        for k, (_, stride, dilation), count in zip(offset, window, positions):
            where.append(slice(k * dilation, k * dilation + stride * (count - 1) + 1, stride))
        views.append(x[tuple(where)])
    return views
''')
NUMPY_POOL_ARGMAX = Helper("pool_argmax", '''
def pool_argmax(x, window, positions):
    """(the largest entry of each window of x, where it is): its place in the flattened window, the first of equal
    ones, as np.argmax and torch's max pooling take it (int8 where windows are short); a NaN, if a window has one."""
    entries = window_entries(x, window, positions)
    small = np.int8 if len(entries) < 128 else np.int64  # a short index: fewer bytes to move
    best, index = entries[0].copy(), np.zeros(entries[0].shape, dtype=small)
    for k, entry in enumerate(entries[1:], 1):
        index += (entry > best) * (k - index)  # k where entry is larger: arithmetic (np.putmask mispredicts a branch)
        np.maximum(best, entry, out=best)
    if np.isnan(x).any():  # where a window holds a NaN: its first
        found = np.isnan(entries[0])
        for k, entry in enumerate(entries[1:], 1):
            first = np.isnan(entry) & ~found
            np.putmask(index, first, k)
            found |= first
    return best, index
''')
NUMPY_POOL_MAX = Helper("pool_max", '''
def pool_max(x, window, positions):
    """The largest entry of each window of x (NaN where it has one)."""
    entries = window_entries(x, window, positions)
    best = entries[0].copy()
    for entry in entries[1:]:
        np.maximum(best, entry, out=best)
    return best
''')
NUMPY_POOL_SCATTER = Helper("pool_scatter", '''
def pool_scatter(delta, index, window, shape):
    """Each window's δ added at its entry `index` (pool_argmax's), into zeros of `shape`."""
    out = np.zeros(shape, dtype=delta.dtype)
    delta = delta.reshape(index.shape)
    tiles = all(stride == size and dilation == 1 for size, stride, dilation in window)
    for k, view in enumerate(window_entries(out, window, index.shape[2:])):
        if tiles:  # windows apart: each entry is written once
            np.multiply(delta, index == k, out=view)
        else:
            view += delta * (index == k)  # as δ times the one-hot of the arg-max
    return out
''')


def _numpy_call(printer, statement, texts, into):
    info = statement.tensor
    positions = tuple(statement.shape[2:2 + len(info.window)])
    if info.key == "forward":  # texts: x
        printer.use(NUMPY_WINDOW_ENTRIES)
        return f"{printer.use(NUMPY_POOL_MAX)}({texts[0]}, {info.window}, {positions})[..., None]"
    if info.key == "pair":  # texts: x; the maxima and the arg-max, from one pass over the windows
        printer.use(NUMPY_WINDOW_ENTRIES)
        return f"{printer.use(NUMPY_POOL_ARGMAX)}({texts[0]}, {info.window}, {positions})"
    if info.key in ("gather", "index"):  # texts: the pair
        return f"{texts[0]}[0][..., None]" if info.key == "gather" else f"{texts[0]}[1]"
    printer.use(NUMPY_WINDOW_ENTRIES)  # scatter: texts δ, index
    shape = f"({texts[1]}.shape[0], {', '.join(map(str, statement.shape[1:]))})"
    return f"{printer.use(NUMPY_POOL_SCATTER)}({texts[0]}, {texts[1]}, {info.window}, {shape})"


for _dims in (1, 2):
    lookup(f"max_pool{_dims}d").calls = {"torch": Call(_torch_call), "numpy": Call(_numpy_call)}


@plan_rule
def max_pool_calls(uses: Uses, shapes: dict, backend: str) -> Uses:
    """Max pooling's arg-max, its max over windows, and the fold of δ at the arg-max, as torch's pooling calls: the
    arg-max moves to the forward pass, where the max reads it."""
    if call("max_pool2d", backend) is None:
        return uses
    made = {s.symbol: s for s in uses.statements}
    replaced = set()  # the statements under a replaced one: each goes where nothing reads it any more
    for statement in list(uses.statements):
        if statement.kind != "max" or not statement.tensor.first:
            continue
        windows = _pooled_windows(statement.operands[0], made, replaced)
        if windows is None:
            continue
        x = windows.operands[0]
        arg = next((s for s in uses.statements if s.kind == "argmax" and s.operands == statement.operands), None)
        if arg is None:  # the forward pass alone
            _replace(uses, statement, (x,), windows, "forward")
            continue
        if not _only_routed(uses, arg.symbol):  # the arg-max read otherwise too (a second-order product's): as derived
            continue
        pair = _pair(uses, arg, x, windows, shapes)  # one call: the maxima and the arg-max, read off at once
        uses.insert(uses.statements.index(statement), pair)
        top = _replace(uses, statement, (pair.symbol,), windows, "gather")
        index = _replace(uses, arg, (pair.symbol,), windows, "index")
        uses.statements.remove(index)
        uses.insert(uses.statements.index(top) + 1, index)  # the pair freed here: its maxima live on as top alone
        for fold in [s for s in uses.statements if s.kind == "fold"]:
            cotangent = _routed(fold, arg.symbol, made, replaced)
            if cotangent is not None:
                _replace(uses, fold, (cotangent, index.symbol), windows, "scatter")
    for statement in reversed(list(uses.statements)):  # last first: a window read only by a dropped flattening
        if statement.symbol in replaced and not uses.readers(statement.symbol):
            uses.statements.remove(statement)
    return uses


def _pooled_windows(patch, made: dict, replaced: set):
    """The windows statement under a flattened window `patch` (over axes 2..), unpadded; or None."""
    flat = made.get(patch)
    windows = made.get(flat.operands[0]) if flat is not None and flat.kind == "rearrange" and \
        flat.operands[0].is_Symbol else None
    if windows is None or windows.kind != "windows" or windows.operands[0].count_ops() > 2:
        return None  # windows of a value, or of a short expression (x + a), which each call computes again
    source = made.get(windows.operands[0])
    dims = len(windows.tensor.window)
    if (source is not None and source.kind == "pad") or windows.tensor.axes != tuple(range(2, 2 + dims)):
        return None
    replaced.update({flat.symbol, windows.symbol})
    return windows


def _only_routed(uses: Uses, arg) -> bool:
    """Whether the arg-max is read only by one-hots that are read only by δ routed to it, δ·onehot flattened back
    into windows, and folded: the reads that torch's indices replace."""
    for onehot in uses.readers(arg):
        if onehot.kind != "onehot":
            return False
        for split in uses.readers(onehot.symbol):
            if split.kind != "rearrange" or not split.operands[0].is_Mul or \
                    any(reader.kind != "fold" for reader in uses.readers(split.symbol)):
                return False
    return True


def _routed(fold, arg, made: dict, replaced: set):
    """δ where `fold` folds δ·onehot(arg) back (arg an arg-max); or None."""
    split = made.get(fold.operands[0])
    if split is None or split.kind != "rearrange" or not split.operands[0].is_Mul:
        return None
    factors = split.operands[0].args
    onehots = [f for f in factors if f in made and made[f].kind == "onehot" and made[f].operands == (arg,)]
    if len(onehots) != 1 or len(factors) != 2:
        return None
    replaced.update({split.symbol, onehots[0]})
    return next(f for f in factors if f is not onehots[0])


def _pair(uses: Uses, arg, x, windows, shapes: dict) -> Statement:
    """A statement that pools x once, into the pair (maxima, arg-max): named after the arg-max's statement."""
    symbol = sp.Symbol(unused(f"{arg.name}_pair", {s.name for s in uses.statements}), real=True)
    shapes[symbol] = tuple(arg.shape)
    info = Tensor(symbol, tuple(arg.shape), "max_pool", window=windows.tensor.window, key="pair")
    return Statement(symbol.name, "call", operands=(x,), shape=arg.shape, op=f"max_pool{len(windows.tensor.window)}d",
                     tensor=info)


def _replace(uses: Uses, statement, operands: tuple, windows, key: str):
    info = Tensor(statement.symbol, tuple(statement.shape), "max_pool", window=windows.tensor.window, key=key)
    made = Statement(statement.name, "call", operands=operands, shape=statement.shape,
                     op=f"max_pool{len(windows.tensor.window)}d", tensor=info, label=statement.label)
    uses.statements[uses.statements.index(statement)] = made
    uses.rewrite(made, {})
    return made


@plan_rule
def steps_before_the_scatter(uses: Uses, shapes: dict, backend: str) -> Uses:
    """fold(δ)·H(x), x the pooling's input (a ReLU's output) and H a step of x alone, as fold(δ·H(top)): the scatter
    puts δ only where x is its window's max, top, so both are the same entry for entry. The step then runs over the
    pooled positions, not the input's, and the backward pass no longer reads x, whose array dies with the forward
    pass (LeNet's two ReLUs)."""
    made = {s.symbol: s for s in uses.statements}
    for scatter in [s for s in uses.statements if s.kind == "call" and s.tensor is not None and
                    s.tensor.op == "max_pool" and s.tensor.key == "scatter"]:
        delta, index = scatter.operands
        readers = uses.readers(scatter.symbol)
        if len(readers) != 1 or readers[0].kind != "expr" or not readers[0].expr.is_Mul or index not in made:
            continue
        reader = readers[0]
        step = reader.expr / scatter.symbol
        pair = made.get(made[index].operands[0])
        top = next((s for s in uses.statements if s.kind == "call" and s.tensor is not None and
                    s.tensor.op == "max_pool" and s.tensor.key == "gather" and pair is not None and
                    s.operands == (pair.symbol,)), None)
        if top is None or step.has(scatter.symbol) or step.free_symbols != {pair.operands[0]} or \
                not _a_step(step) or shapes.get(top.symbol) != shapes.get(delta):
            continue
        name = unused(f"{delta.name}_masked", {s.name for s in uses.statements})
        masked = Statement(name, "expr", expr=delta * step.xreplace({pair.operands[0]: top.symbol}),
                            shape=tuple(shapes[delta]))
        shapes[masked.symbol] = shapes[delta]
        uses.insert(uses.statements.index(scatter), masked)
        uses.rewrite(scatter, {delta: masked.symbol})
        reader.expr = scatter.symbol
        uses.rewrite(reader, {})
    return uses


def _a_step(expr) -> bool:
    """Whether expr is made of Heaviside steps and numbers alone (finite everywhere: 0·H stays 0)."""
    return expr.has(sp.Heaviside) and all(
        isinstance(e, (sp.Heaviside, sp.Add, sp.Mul, sp.Number, sp.Symbol)) for e in sp.preorder_traversal(expr))
