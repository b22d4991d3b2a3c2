"""conv1d, conv2d: a kernel slid over the input, summed over the input channels of its group, plus a bias per output
channel; F.conv1d/F.conv2d, nn.Conv1d/nn.Conv2d (their parameters and torch twins) and ATen's convolutions.

A convolution is one contraction of the input's windows with the kernel (einsum "ncxyij,ocij->noxy", windows.py), so
that its derivatives follow from the contraction's index spec and the windows' adjoint: the kernel's δ is the
correlation of the input with δ, and the input's δ is the fold of δ times the kernel, a transposed convolution."""

from __future__ import annotations

import math
from dataclasses import replace

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, positive, short
from ..declare.tensor import Parameter, SymbolicTensor, as_value, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..graph.ir import Tensor
from ..plan.uses import Uses
from ..program import Statement
from .pad import pad_axes
from .registry import Call, TorchNames, call, defop, lookup, plan_rule
from .windows import sliding, torch_sizes, window_count

POSITIONS, OFFSETS = "xyz", "ijk"  # the einsum letters of the output's positions and of the kernel's offsets
SIZES = {1: "length", 2: "height, width"}


def spatial(value, dims: int, name: str, where: str, least: int = 1) -> tuple:
    """An option given as one integer or one per spatial axis (kernel_size=5, stride=(2, 1)), as a tuple."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(values) != dims or any(isinstance(v, bool) or not isinstance(v, int) or v < least for v in values):
        raise fail(f"{where}: {name} must be {'a positive' if least else 'an'} integer or {dims} of them, got "
                   f"{short(value)}")
    return values


def spatial_option(dims: int, least: int = 1):
    """A TOML spec's check of an option given as one integer or a list of one per spatial axis."""

    def check(value):
        values = value if isinstance(value, list) else [value]
        if len(values) not in (1, dims) or any(isinstance(v, bool) or not isinstance(v, int) or v < least
                                               for v in values):
            raise SymPropError(f"must be {'a positive' if least else 'an'} integer or a list of {dims}, got "
                               f"{short(value)}")
        return tuple(values) * (dims // len(values))

    return check


def image_shape(width, dims: int, kind: str) -> tuple:
    """What flows into a spec's convolution or pooling: (channels, *positions); refused otherwise."""
    if not isinstance(width, tuple) or len(width) != dims + 1:
        flowing = f"width {width}" if isinstance(width, int) else f"shape {tuple(width)}"
        raise SymPropError(f"{kind} takes (channels, {SIZES[dims]}) per sample, and what flows in has {flowing}: "
                           f"give inputs = [channels, {SIZES[dims]}]")
    return width


def built(make):
    """A layer a spec declares, its errors located at the spec's key (not at a line of Python)."""
    try:
        return make()
    except SymPropError as error:
        raise SymPropError(error.message) from None


def paddings(padding, kernel: tuple, stride: tuple, dilation: tuple, where: str) -> tuple:
    """(before, after) along each spatial axis: torch's padding, a number, a tuple, "valid" or "same" (its odd one
    after, as torch puts it)."""
    if padding == "valid":
        return ((0, 0),) * len(kernel)
    if padding == "same":
        if set(stride) != {1}:
            raise fail(f"{where}: padding='same' needs stride 1 (as torch's does), got stride {stride}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in total)
    if isinstance(padding, str):
        raise fail(f"{where}: padding {padding!r} is not one of 'valid', 'same', a number or a tuple")
    return tuple((p, p) for p in spatial(padding, len(kernel), "padding", where, least=0))


def reshaped(g: Graph, value: Value, shape: tuple, stem: str) -> Value:
    """The same entries in another shape (channels split into groups, or merged back)."""
    return g.apply("rearrange", (value,), stem=stem, shape=tuple(shape), split=value.shape,
                   perm=tuple(range(len(value.shape))))


def conv_graph(g: Graph, x: Value, weight: Value, bias, stride: tuple, pads: tuple, dilation: tuple, groups: int,
               name: str, where: str) -> Value:
    """The convolution of x (batch, channels, *positions) with weight (outputs, channels/groups, *kernel), plus bias;
    `name` labels the result."""
    dims = len(weight.shape) - 2
    axes = tuple(range(2, 2 + dims))
    kernel = weight.shape[2:]
    padded = pad_axes(g, x, axes, pads)
    counts = [window_count(padded.shape[a], k, s, d) for a, k, s, d in zip(axes, kernel, stride, dilation,
                                                                             strict=True)]
    if 0 in counts:
        raise fail(f"{where}: the input {shape_text(x.shape)} (padded {shape_text(padded.shape)}) is smaller than the "
                   f"kernel {shape_text(kernel)} at dilation {shape_text(dilation)}")
    name = g.fresh(name).name
    tag = name[1:] if name[0] == "z" else "_" + name
    windows = sliding(g, padded, axes, tuple(zip(kernel, stride, dilation, strict=True)), stem=f"win{tag}")
    positions, offsets = POSITIONS[:dims], OFFSETS[:dims]
    if groups == 1:
        out = g.apply("einsum", (windows, weight), stem=f"cv{tag}",
                      spec=f"nc{positions}{offsets},oc{offsets}->no{positions}")
    else:  # the channels split into (group, channel in it), both the windows' and the kernel's
        channels, outputs = x.shape[1], weight.shape[0]
        grouped = reshaped(g, windows, (windows.shape[0], groups, channels // groups, *windows.shape[2:]),
                           f"grp{tag}")
        kernels = reshaped(g, weight, (groups, outputs // groups, *weight.shape[1:]), f"wgrp{tag}")
        product = g.apply("einsum", (grouped, kernels), stem=f"cv{tag}",
                          spec=f"ngc{positions}{offsets},goc{offsets}->ngo{positions}")
        out = reshaped(g, product, (x.shape[0], outputs, *product.shape[3:]), f"cvm{tag}")
    g.cotangent_names[out.expr] = f"d{name}"
    bias = bias() if callable(bias) else bias
    if bias is not None:  # one number per output channel: (outputs, 1, 1) against (batch, outputs, rows, columns)
        column = reshaped(g, bias, (bias.shape[0],) + (1,) * dims, f"bcol{tag}")
        out = Value(out.expr + column.expr, out.shape)
    return g.label(out, name, reserved=True)


def convolution(dims: int):
    """torch's F.conv1d or F.conv2d, on symbolic tensors and torch's alike."""
    where = f"F.conv{dims}d"

    def functional(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        input, weight_ = resolved(input), resolved(weight)
        if in_torch(input, weight_):
            return torch_function(f"torch.nn.functional.conv{dims}d")(input, weight_, resolved(bias), stride,
                                                                       padding, dilation, groups)
        x, w = symbolic(input, where), as_value(weight_, f"{where} weight")  # a parameter, or a fixed kernel
        if len(w.shape) != dims + 2:
            raise fail(f"{where}: the weight must be (out_channels, in_channels/groups, "
                       f"{'kernel' if dims == 1 else 'kH, kW'}), got {shape_text(w.shape)}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise fail(f"{where}: groups must be a positive integer, got {short(groups)}")
        groups_ = groups
        if len(x.shape) != dims + 2 or x.shape[1] != w.shape[1] * groups_ or w.shape[0] % groups_:
            raise fail(f"{where}: input {shape_text(x.shape)} and weight {shape_text(w.shape)} do not fit at groups "
                       f"{groups_} (the input is (batch, channels, {'length' if dims == 1 else 'height, width'}), the "
                       "weight (out_channels, channels/groups, ...), out_channels divisible by groups)")
        kernel = w.shape[2:]
        strides = spatial(stride, dims, "stride", where)
        dilations = spatial(dilation, dims, "dilation", where)
        pads = paddings(padding, kernel, strides, dilations, where)

        def make_bias():  # after the product, so that values are numbered in the order they are computed
            if bias is None:
                return None
            b = as_value(bias, f"{where} bias")
            if b.shape != (w.shape[0],):
                raise fail(f"{where}: bias {shape_text(b.shape)} does not fit weight {shape_text(w.shape)} (one per "
                           "output channel)")
            return b

        trace = running()
        return SymbolicTensor(conv_graph(trace.graph, x, w, make_bias, strides, pads, dilations, groups_,
                                         trace.stem("z"), where))

    functional.__name__ = functional.__qualname__ = f"conv{dims}d"
    return functional


conv1d, conv2d = convolution(1), convolution(2)


def aten_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """ATen's convolution (torch's lowering of every conv): a plain one is conv1d or conv2d."""
    if transposed:
        raise fail("a transposed convolution (conv_transpose) is not supported by symprop yet")
    dims = len(as_value(weight, "convolution weight").shape) - 2
    if dims not in (1, 2):
        raise fail(f"a {dims}-D convolution is not supported by symprop (1-D and 2-D are)")
    return convolution(dims)(input, weight, bias, stride, padding, dilation, groups)


def layer(dims: int) -> type:
    """nn.Conv1d or nn.Conv2d."""
    functional = convolution(dims)

    class Conv(Module):
        kind = f"conv{dims}d"
        toml_keys = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")

        def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                     groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
            super().__init__()
            where = f"Conv{dims}d"
            self.in_channels = positive(in_channels, f"{where} in_channels")
            self.out_channels = positive(out_channels, f"{where} out_channels")
            self.kernel_size = spatial(kernel_size, dims, "kernel_size", where)
            self.stride = spatial(stride, dims, "stride", where)
            self.dilation = spatial(dilation, dims, "dilation", where)
            self.padding = padding if isinstance(padding, str) else spatial(padding, dims, "padding", where, least=0)
            paddings(self.padding, self.kernel_size, self.stride, self.dilation, where)
            self.groups = positive(groups, f"{where} groups")
            if in_channels % groups or out_channels % groups:
                raise fail(f"{where}: in_channels {in_channels} and out_channels {out_channels} must be divisible by "
                           f"groups {groups}")
            if padding_mode != "zeros":
                raise fail(f"{where}: padding_mode {padding_mode!r} is not supported by symprop (only 'zeros')")
            if not isinstance(bias, bool):
                raise fail(f"{where}: bias must be True or False, got {short(bias)}")
            fan_in = in_channels // groups * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in)  # torch's default: U(±1/√fan_in), weight and bias alike
            self.weight = Parameter((out_channels, in_channels // groups, *self.kernel_size), init=("uniform", bound))
            self.bias = Parameter((out_channels,), init=("uniform", bound)) if bias else None

        @classmethod
        def from_torch(cls, module):
            return cls(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                       module.dilation, module.groups, module.bias is not None, module.padding_mode)

        @classmethod
        def from_toml(cls, table: Table, width):
            channels = image_shape(width, dims, f"conv{dims}d")[0]
            option = spatial_option(dims)
            padding = table.data.get("padding", 0)
            padding = padding if padding in ("same", "valid") else table.get("padding", spatial_option(dims, 0), 0)
            args = (channels, table.get("out_channels", positive), table.get("kernel_size", option),
                    table.get("stride", option, 1), padding, table.get("dilation", option, 1),
                    table.get("groups", positive, 1), table.get("bias", flag, True))
            return built(lambda: cls(*args))

        def output_width(self, width) -> tuple:
            pads = paddings(self.padding, self.kernel_size, self.stride, self.dilation, self.describe())
            return (self.out_channels, *(window_count(n + before + after, k, s, d) for n, (before, after), k, s, d
                                         in zip(width[1:], pads, self.kernel_size, self.stride, self.dilation,
                                                strict=True)))

        def forward(self, x):
            shape = getattr(x, "shape", ())
            if len(shape) != dims + 2 or shape[1] != self.in_channels:
                raise fail(f"{self.describe()} expects (batch, {self.in_channels}, "
                           f"{'length' if dims == 1 else 'height, width'}), but what flows in has shape "
                           f"{shape_text(shape)}")
            return functional(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

        def symbol_stem(self, name: str, tag: str) -> str:
            return {"weight": "w", "bias": "b"}[name] + tag

        def torch_twin(self):
            import torch

            return getattr(torch.nn, f"Conv{dims}d")(self.in_channels, self.out_channels, self.kernel_size,
                                                      self.stride, self.padding, self.dilation, self.groups,
                                                      self.bias is not None)

        def describe(self) -> str:
            one = (lambda v: v[0]) if dims == 1 else (lambda v: v)
            options = "".join(f", {name}={one(value)}" for name, value, default in (
                ("stride", self.stride, (1,) * dims), ("dilation", self.dilation, (1,) * dims),
                ("groups", (self.groups,) * dims, (1,) * dims)) if value != default)
            padding = self.padding if isinstance(self.padding, str) else one(self.padding)
            options += f", padding={padding!r}" if padding not in (0, (0, 0)) else ""
            options += ", bias=False" if self.bias is None else ""
            return f"Conv{dims}d({self.in_channels}, {self.out_channels}, kernel_size={one(self.kernel_size)}{options})"

    Conv.__name__ = Conv.__qualname__ = f"Conv{dims}d"
    Conv.__doc__ = f"torch.nn.Conv{dims}d: a kernel slid over the input's {'positions' if dims == 1 else 'pixels'}."
    return Conv


Conv1d, Conv2d = layer(1), layer(2)
defop("conv1d", layer=Conv1d, functional=conv1d, init_doc="Conv1d U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
      torch=TorchNames(("torch.nn.functional.conv1d", "torch.conv1d"), (), "Conv1d",
                       ("aten.conv1d.default", "aten.conv1d.padding")))
defop("conv2d", layer=Conv2d, functional=conv2d, init_doc="Conv2d U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
      torch=TorchNames(("torch.nn.functional.conv2d", "torch.conv2d"), (), "Conv2d",
                       ("aten.conv2d.default", "aten.conv2d.padding", "aten.convolution.default")),
      front={"aten.convolution.default": aten_convolution})


# -- one call each, where the backend has them: torch's convolution and its two gradients ----------------------------
# A convolution is derived as windows and contractions; torch runs the same sums as its convolution kernels:
#   z = einsum(windows(x), W)         -> F.conv2d(x, W, stride, padding, dilation)
#   dW = einsum(δ, windows(x))        -> torch.nn.grad.conv2d_weight(x, W.shape, δ, ...)
#   dx = fold(einsum(δ, W))           -> F.conv_transpose2d(δ, W, stride, output_padding, dilation)
# and the same with the channels split into groups (a grouped or depthwise convolution). The transposed convolution
# takes δ and W as they are, where torch.nn.grad.conv2d_input makes a stand-in of x's shape: 3–5% of LeNet's step.
def _torch_call(printer, statement, texts, into):
    info = statement.tensor
    dims = len(info.window)
    _, stride, dilation = torch_sizes(info.window)
    padding = torch_sizes(tuple((before, 0, 0) for before, _ in info.bounds))[0]
    groups = int(info.spec or 1)  # a grouped convolution's groups, kept in the call's spec
    options = [f"{name}={value}" for name, value, default in (("stride", stride, 1), ("padding", padding, 0),
                                                               ("dilation", dilation, 1), ("groups", groups, 1))
               if value != default]
    if info.key == "forward":  # texts: x, W (and b)
        return printer._call(f"torch.nn.functional.conv{dims}d", *texts, *options)
    if info.key == "weight":  # texts: x, δ
        return printer._call(f"torch.nn.grad.conv{dims}d_weight", texts[0], str(tuple(statement.shape)), texts[1],
                             *options)
    # texts: δ, W; the positions of x that no window's last entry reaches (stride > 1) as output padding
    extra = torch_sizes(tuple(((n - d * (k - 1) - 1) % s, 0, 0)
                              for n, (k, s, d) in zip(statement.shape[2:], info.window, strict=True)))[0]
    options = [f"{name}={value}" for name, value, default in (("stride", stride, 1), ("output_padding", extra, 0),
                                                               ("groups", groups, 1), ("dilation", dilation, 1))
               if value != default]
    return printer._call(f"torch.nn.functional.conv_transpose{dims}d", texts[0], texts[1], *options)


for _dims in (1, 2):
    lookup(f"conv{_dims}d").calls = {"torch": Call(_torch_call)}


@plan_rule
def convolution_calls(uses: Uses, shapes: dict, backend: str) -> Uses:
    """A convolution's contractions with the windows of its input, and the fold of δ times its kernel, as the
    backend's convolution calls (the windows, and pads read by nothing else, go)."""
    if call("conv2d", backend) is None:
        return uses
    made = {s.symbol: s for s in uses.statements}
    for statement in list(uses.statements):
        if statement.kind == "einsum":
            _contraction_call(uses, statement, made)
        elif statement.kind == "fold":
            _fold_call(uses, statement, made)
        elif statement.kind == "rearrange":
            _grouped_call(uses, statement, made)
    for statement in list(uses.statements):
        if statement.kind == "call" and statement.op.startswith("conv") and statement.tensor.key == "forward":
            _with_bias(uses, statement, made, shapes)
    _drop_unread(uses, ("windows", "pad", "einsum", "rearrange"))
    return uses


def _with_bias(uses: Uses, conv, made: dict, shapes: dict) -> None:
    """conv(x, W) + b[:, None, None], read once, as one call with the bias (as torch's nn.Conv2d runs it)."""
    readers = uses.readers(conv.symbol)
    if len(readers) != 1 or readers[0].kind not in ("expr", "map"):
        return
    total = readers[0]
    expr = total.operands[0] if total.kind == "map" else total.expr
    if total.kind == "map" and any(total.broadcast_operands) or expr is None or not expr.is_Add or \
            len(expr.args) != 2 or conv.symbol not in expr.args or shapes.get(total.symbol) != shapes.get(conv.symbol):
        return
    column = made.get(next(a for a in expr.args if a != conv.symbol))
    if column is None or column.kind != "rearrange" or not column.operands[0].is_Symbol or \
            len(column.tensor.operands[0].shape) != 1:
        return
    call_statement = Statement(total.name, "call", operands=(*conv.operands, column.operands[0]), shape=total.shape,
                               op=conv.op, tensor=conv.tensor, label=total.label)
    uses.statements[uses.statements.index(total)] = call_statement
    uses.rewrite(call_statement, {})
    uses.statements.remove(conv)


def _conv_specs(dims: int) -> tuple[str, str, str]:
    """The index specs of a convolution (groups 1), of its kernel's δ and of its windows' δ."""
    positions, offsets = POSITIONS[:dims], OFFSETS[:dims]
    windows, kernel, out = f"nc{positions}{offsets}", f"oc{offsets}", f"no{positions}"
    return f"{windows},{kernel}->{out}", f"{out},{windows}->{kernel}", f"{out},{kernel}->{windows}"


def _windows_of(symbol, made: dict):
    """The windows statement that makes `symbol` (over the axes after batch and channels, zero padding), and the array
    they slide over with the padding that torch's call may add itself (symmetric pads), or None."""
    windows = made.get(symbol)
    if windows is None or windows.kind != "windows" or not symbol.is_Symbol:
        return None
    dims = len(windows.tensor.window)
    if windows.tensor.axes != tuple(range(2, 2 + dims)) or len(windows.shape) != 2 + 2 * dims:
        return None
    source, pads = windows.operands[0], [(0, 0)] * dims
    while source in made and made[source].kind == "pad" and not made[source].tensor.key:
        (axis,), (before, after) = made[source].tensor.axes, made[source].tensor.bounds
        if before != after or pads[axis - 2] != (0, 0):
            break
        pads[axis - 2] = (before, after)
        source = made[source].operands[0]
    if any(before for before, _ in pads):  # what stays padded is the pads above `source`
        return windows, source, tuple(pads)
    return windows, windows.operands[0], tuple(pads)


def _info(statement, windows, pads, key: str) -> Tensor:
    return Tensor(statement.symbol, tuple(statement.shape), "conv", window=windows.tensor.window, bounds=pads, key=key)


def _replace(uses: Uses, statement, operands: tuple, info: Tensor) -> None:
    made = Statement(statement.name, "call", operands=operands, shape=statement.shape, op=f"conv{len(info.window)}d",
                     tensor=info, label=statement.label)
    uses.statements[uses.statements.index(statement)] = made
    uses.rewrite(made, {})


def _contraction_call(uses: Uses, statement, made: dict) -> None:
    if len(statement.operands) != 2 or any(statement.broadcast_operands) or \
            not all(op.is_Symbol for op in statement.operands):
        return
    spec = statement.tensor.spec
    for position, key in ((0, "forward"), (1, "weight")):
        found = _windows_of(statement.operands[position], made)
        if found is None:
            continue
        windows, source, pads = found
        forward, weight, _ = _conv_specs(len(windows.tensor.window))
        if key == "forward" and spec == forward:
            _replace(uses, statement, (source, statement.operands[1]), _info(statement, windows, pads, key))
        elif key == "weight" and spec == weight:
            _replace(uses, statement, (source, statement.operands[0]), _info(statement, windows, pads, key))
        return


def _fold_call(uses: Uses, statement, made: dict) -> None:
    product = made.get(statement.operands[0])
    dims = len(statement.tensor.window)
    info = Tensor(statement.symbol, tuple(statement.shape), "conv", window=statement.tensor.window,
                  bounds=((0, 0),) * dims, key="input")
    if product is not None and product.kind == "rearrange":  # grouped: the windows' δ, its groups merged back
        found = _grouped_product(uses, product, made, _grouped_specs(dims)[2])
        if found is not None and statement.tensor.axes == tuple(range(2, 2 + dims)):
            cotangent, kernel = found  # (δ with its groups split, the kernel (groups, outputs/groups, ...))
            _replace(uses, statement, (made[cotangent].operands[0], made[kernel].operands[0]),
                     replace(info, spec=str(made[kernel].shape[0])))
        return
    if product is None or product.kind != "einsum" or product.tensor.spec != _conv_specs(dims)[2] or \
            not all(op.is_Symbol for op in product.operands) or any(product.broadcast_operands) or \
            statement.tensor.axes != tuple(range(2, 2 + dims)) or len(uses.readers(product.symbol)) != 1:
        return
    _replace(uses, statement, product.operands, info)


def _grouped_specs(dims: int) -> tuple[str, str, str]:
    """conv_specs with the channels split into (group, channel in it)."""
    positions, offsets = POSITIONS[:dims], OFFSETS[:dims]
    windows, kernel, out = f"ngc{positions}{offsets}", f"goc{offsets}", f"ngo{positions}"
    return f"{windows},{kernel}->{out}", f"{out},{windows}->{kernel}", f"{out},{kernel}->{windows}"


def _grouped_product(uses: Uses, merged, made: dict, spec: str):
    """The operands of the grouped contraction of this spec that `merged` rearranges, and nothing else reads (each a
    rearrangement: channels split into groups, of an array of its own shape, not one broadcast to it: the δ of a
    mean is one number per channel); else None."""
    product = made.get(merged.operands[0]) if merged.operands[0].is_Symbol else None
    if product is None or product.kind != "einsum" or product.tensor.spec != spec or \
            any(product.broadcast_operands) or not all(op.is_Symbol and op in made and made[op].kind == "rearrange" and
                    not any(made[op].broadcast_operands) for op in product.operands) or \
            len(uses.readers(product.symbol)) != 1:
        return None
    return product.operands


def _grouped_call(uses: Uses, statement, made: dict) -> None:
    """A grouped convolution (its output's groups merged) or its kernel's δ (the kernel's groups merged), as calls."""
    product = made.get(statement.operands[0]) if statement.operands[0].is_Symbol else None
    if product is None or product.kind != "einsum":
        return
    dims = len(product.tensor.spec.split("->")[1]) - 3
    if dims not in (1, 2):
        return
    forward, weight, _ = _grouped_specs(dims)
    found = _grouped_product(uses, statement, made, product.tensor.spec)
    if found is None or product.tensor.spec not in (forward, weight):
        return
    first, second = found
    grouped = made[first] if product.tensor.spec == forward else made[second]  # the windows, channels split
    found = _windows_of(grouped.operands[0], made)
    if found is None:
        return
    windows, source, pads = found
    groups = grouped.shape[1]
    if product.tensor.spec == forward:  # (windows, kernel): the kernel is the weight, its groups split
        operands, key = (source, made[second].operands[0]), "forward"
    else:  # (δ with its groups split, windows)
        operands, key = (source, made[first].operands[0]), "weight"
    _replace(uses, statement, operands, replace(_info(statement, windows, pads, key), spec=str(groups)))


def _drop_unread(uses: Uses, kinds: tuple) -> None:
    """Statements of these kinds that nothing reads any more, last first (a pad read only by dropped windows)."""
    for statement in reversed(list(uses.statements)):
        if statement.kind in kinds and not uses.readers(statement.symbol):
            uses.statements.remove(statement)
