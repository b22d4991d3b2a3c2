"""avg_pool1d, avg_pool2d and their adaptive forms: the mean of each window; F.avg_pool*, nn.AvgPool*,
nn.AdaptiveAvgPool* and ATen's. Each window (windows.py) is summed, then divided by its count: the kernel's size, the
entries inside the input (count_include_pad=False) or divisor_override. δ is shared evenly by each window's entries,
folded back onto the input."""

from __future__ import annotations

import math

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor
from ..declare.trace import fail, running
from ..graph import Graph, Value
from .conv import spatial
from .max_pool import (
    REQUIRED,
    adaptive_sizes,
    adaptive_windows,
    checked_input,
    output_sizes,
    pool_layer,
    pooled,
    window_sizes,
)
from .registry import TorchNames, defop
from .sum import reduce_sum


def _summed(g: Graph, flat: Value, stem: str) -> Value:
    return reduce_sum(g, flat, (*flat.shape[:-1], 1), stem=stem)


def inside_counts(sizes: tuple, kernel: tuple, stride: tuple, widths: tuple) -> tuple[tuple, tuple]:
    """(shape, counts): how many entries of each window lie inside the input, not in its padding, row-major."""
    per_axis = []
    for size, k, s, p in zip(sizes, kernel, stride, widths, strict=True):
        count = (size + 2 * p - k) // s + 1
        per_axis.append([min(i * s - p + k, size) - max(i * s - p, 0) for i in range(count)])
    counts = [1]
    for axis in per_axis:
        counts = [c * a for c in counts for a in axis]
    return tuple(len(axis) for axis in per_axis), tuple(float(c) for c in counts)


def avg_pooling(dims: int):
    """torch's F.avg_pool1d or F.avg_pool2d."""
    where = f"F.avg_pool{dims}d"

    def functional(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
        input = resolved(input)
        if in_torch(input):
            extra = () if dims == 1 else (divisor_override,)
            return torch_function(f"torch.nn.functional.avg_pool{dims}d")(input, kernel_size, stride, padding,
                                                                           ceil_mode, count_include_pad, *extra)
        if ceil_mode:
            raise fail(f"{where}: ceil_mode=True is not supported by symprop yet")
        x = checked_input(input, dims, where)
        kernel = spatial(kernel_size, dims, "kernel_size", where)
        strides = kernel if stride is None or stride == [] or stride == () else spatial(stride, dims, "stride", where)
        widths = spatial(padding, dims, "padding", where, least=0)
        if any(2 * p > k for p, k in zip(widths, kernel, strict=True)):
            raise fail(f"{where}: padding {widths} must be at most half the kernel {kernel} (as torch requires)")
        g, name = running().graph, running().stem("h")
        total = pooled(g, x, kernel, strides, tuple((p, p) for p in widths), (1,) * dims, _summed,
                       "sum_" + name, where)
        if divisor_override is not None:
            if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override < 1:
                raise fail(f"{where}: divisor_override must be a positive integer, got {divisor_override!r}")
            divisor = Value(divisor_override, ())
        elif count_include_pad or not any(widths):
            divisor = Value(math.prod(kernel), ())
        else:  # the entries inside the input, window by window: a table of the model's constants
            shape, counts = inside_counts(x.shape[2:], kernel, strides, widths)
            divisor = g.apply("constant", (), shape=shape, data=counts)
        return SymbolicTensor(g.label(Value(total.expr / divisor.expr, total.shape), name))

    functional.__name__ = functional.__qualname__ = f"avg_pool{dims}d"
    return functional


def adaptive_avg_pooling(dims: int):
    """torch's F.adaptive_avg_pool1d or F.adaptive_avg_pool2d."""
    where = f"F.adaptive_avg_pool{dims}d"

    def functional(input, output_size):
        input = resolved(input)
        if in_torch(input):
            return torch_function(f"torch.nn.functional.adaptive_avg_pool{dims}d")(input, output_size)
        x = checked_input(input, dims, where)
        kernel, _ = zip(*(adaptive_windows(size, out, where)
                          for size, out in zip(x.shape[2:], output_sizes(output_size, x, dims, where), strict=True)),
                        strict=True)
        return avg_pooling(dims)(input, kernel)

    functional.__name__ = functional.__qualname__ = f"adaptive_avg_pool{dims}d"
    return functional


avg_pool1d, avg_pool2d = avg_pooling(1), avg_pooling(2)
adaptive_avg_pool1d, adaptive_avg_pool2d = adaptive_avg_pooling(1), adaptive_avg_pooling(2)
for _dims, _avg, _adaptive in ((1, avg_pool1d, adaptive_avg_pool1d), (2, avg_pool2d, adaptive_avg_pool2d)):
    _options = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
                ("count_include_pad", True)) + ((("divisor_override", None),) if _dims == 2 else ())
    _layer = pool_layer(f"AvgPool{_dims}d", f"avg_pool{_dims}d", _avg, _options, f"torch.nn.AvgPool{_dims}d: the mean "
                        "of each window.", lambda options, width: window_sizes(options, width, dilated=False))
    defop(f"avg_pool{_dims}d", layer=_layer, functional=_avg,
          torch=TorchNames((f"torch.nn.functional.avg_pool{_dims}d", f"torch.avg_pool{_dims}d"), (),
                           f"AvgPool{_dims}d", (f"aten.avg_pool{_dims}d.default",)))
    _layer = pool_layer(f"AdaptiveAvgPool{_dims}d", f"adaptive_avg_pool{_dims}d", _adaptive,
                        (("output_size", REQUIRED),),
                        f"torch.nn.AdaptiveAvgPool{_dims}d: the mean of each of output_size windows.", adaptive_sizes)
    _aten = (f"aten.adaptive_avg_pool{_dims}d.default",) + ((f"aten._adaptive_avg_pool{_dims}d.default",)
                                                             if _dims == 2 else ())
    defop(f"adaptive_avg_pool{_dims}d", layer=_layer, functional=_adaptive,
          torch=TorchNames((f"torch.nn.functional.adaptive_avg_pool{_dims}d",), (), f"AdaptiveAvgPool{_dims}d",
                           _aten))
