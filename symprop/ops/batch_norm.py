"""batch_norm: (x − μ)/√(σ² + ε)·γ + β per channel (axis 1), μ and σ² the batch's mean and biased variance over every
other axis (training), or the running statistics (eval); F.batch_norm, nn.BatchNorm1d and nn.BatchNorm2d (their
parameters and torch twins) and ATen's batch_norm.

Built from sums, as layer_norm is, so that its backward pass is derived, not written: its δ comes out in the book's
three terms, δx = (γ·rstd/M)·(M·δy − Σδy − x̂·Σ(δy·x̂)), M the count of entries per channel. In eval mode the running
statistics are constants of the derivation (the buffers as the model holds them). In training mode a layer that
tracks them records its sums, and the generated modules move its running statistics toward the batch's mean and
unbiased variance as torch's forward does (`batch_statistics`)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, fraction, positive, short
from ..declare.tensor import Parameter, SymbolicTensor, as_value, shape_text
from ..declare.trace import fail, running
from ..graph import Graph, Value
from .conv import built, image_shape, reshaped
from .registry import TorchNames, defop, state_rule
from .sum import read_back_normed, reduce_sum


def per_channel(g: Graph, value: Value, ndim: int, stem: str) -> Value:
    """A vector of one number per channel, shaped (C, 1, ...) to broadcast along axis 1 of an array of `ndim` axes."""
    if ndim == 2 or not value.shape:  # a number (a fresh layer's running mean 0) broadcasts as it is
        return value
    return reshaped(g, value, (value.shape[0],) + (1,) * (ndim - 2), stem)


def batch_norm_graph(g: Graph, x: Value, mean, variance, eps: float, affine, name: str,
                     tracked: tuple | None = None) -> Value:
    """x normalized per channel by the batch's statistics (mean None) or by `mean` and `variance`; `affine`: (γ, β),
    either None; `tracked`: (the layer's state_dict path, its momentum), for a layer whose running statistics the
    batch's update (graph.running_statistics)."""
    ndim = len(x.shape)
    tag = name[1:] if name[0] == "h" else "_" + name
    kept = tuple(d if a == 1 else 1 for a, d in enumerate(x.shape))
    if mean is None:  # the batch's: sums over every axis but the channels', M entries each
        if not x.expr.is_Symbol:  # a sum (a convolution and its bias) is stored, so that Σ(x − μ) = 0 is seen
            x = g.named(x, f"x{tag}")
        count = sp.Mul(*(d for a, d in enumerate(x.shape) if a != 1))
        total = reduce_sum(g, x, kept, stem=f"sum{tag}")
        centred = Value(x.expr - total.expr / count, x.shape)
        # Σ (x − Σx/M) = Σx − Σx, found by reduce_sum (under a name of its own: it may intern a sum it then drops)
        sums_to_zero = reduce_sum(g, centred, kept, stem=f"sum_xc{tag}").expr == 0
        centred = g.named(centred, f"xc{tag}")
        if sums_to_zero:
            g.tensor(centred.expr).zero_sum_axis = tuple(a for a in range(ndim) if a != 1)
        squares = reduce_sum(g, Value(centred.expr ** 2, x.shape), kept, stem=f"ss{tag}")
        shifted = g.named(Value(squares.expr / count + sp.Float(eps), kept), f"var{tag}")
        if tracked is not None:  # a layer called again (a shared encoder) moves its statistics once a call, in order
            calls = sum(entry[0] == tracked[0] for entry in g.running_statistics)
            call = tracked[0] + (f"#{calls + 1}" if calls else "")
            g.running_statistics.append((*tracked, total, squares, count, call))
    else:  # the running statistics: constants
        centred = g.named(Value(x.expr - per_channel(g, mean, ndim, f"rm{tag}").expr, x.shape), f"xc{tag}")
        column = per_channel(g, variance, ndim, f"rv{tag}")
        shifted = Value(column.expr + sp.Float(eps), column.shape)
    rstd = g.named(Value(1 / sp.sqrt(shifted.expr), shifted.shape), f"rstd{tag}")
    normed = g.named(Value(centred.expr * rstd.expr, x.shape), f"xhat{tag}")
    if g.tensor(centred.expr).zero_sum_axis is not None:
        read_back_normed(g, centred, rstd, normed)
    return scaled_per_channel(g, normed, affine, name)


@state_rule
def batch_statistics(g: Graph) -> list[tuple[str, Value]]:
    """For each layer in g.running_statistics, the batch's mean and unbiased variance per channel, (C,) each, as torch
    moves the running statistics toward them: ("2.batch_mean", Σx/M), ("2.batch_var", Σ(x − μ)²/(M − 1))."""
    made = []
    for _, _, total, squares, count, call in g.running_statistics:  # call: the path, path#2 for its second call
        channels, tag = (total.shape[1],), call.replace(".", "_").replace("#", "_")
        made.append((f"{call}.batch_mean", Value(reshaped(g, total, channels, f"bsum{tag}").expr / count, channels)))
        made.append((f"{call}.batch_var",
                     Value(reshaped(g, squares, channels, f"bss{tag}").expr / (count - 1), channels)))
    return made


def scaled_per_channel(g: Graph, normed: Value, affine: tuple, name: str) -> Value:
    """normed·γ + β, γ and β one number per channel (axis 1), either None; `name` labels it."""
    tag = name[1:] if name[0] == "h" else "_" + name
    weight, bias = affine
    out = normed.expr
    if weight is not None:
        out = out * per_channel(g, weight, len(normed.shape), f"gcol{tag}").expr
    if bias is not None:
        out = out + per_channel(g, bias, len(normed.shape), f"bcol{tag}").expr
    return g.named(Value(out, normed.shape), name) if affine != (None, None) else normed


def running_inputs() -> bool:
    """Whether the trace reads running statistics as inputs (forward_eval's)."""
    return getattr(running(), "running_inputs", False)


def channel_vector(part, channels: int, where: str, what: str):
    """A weight, bias or statistic of one number per channel, checked; None stays None."""
    if part is None:
        return None
    value = as_value(part, f"{where} {what}")
    if value.shape != (channels,):
        raise fail(f"{where}: {what} {shape_text(value.shape)} does not fit {channels} channels")
    return value


def functional(input, running_mean=None, running_var=None, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """torch's F.batch_norm: per channel (axis 1) of (N, C), (N, C, L) or (N, C, H, W)."""
    input = resolved(input)
    if in_torch(input):  # the statistics in the input's dtype (a float32 module's buffers, checked in float64)
        statistics = [None if v is None else resolved(v).to(input.dtype) for v in (running_mean, running_var)]
        return torch_function(TORCH.functions[0])(input, *statistics, resolved(weight), resolved(bias), training,
                                                   momentum, eps)
    where = "F.batch_norm"
    x = symbolic(input, where)
    if len(x.shape) not in (2, 3, 4):
        raise fail(f"{where}: the input must be (batch, channels), (batch, channels, length) or (batch, channels, "
                   f"height, width), got {shape_text(x.shape)}")
    channels = x.shape[1]

    def vector(part, what: str):
        return channel_vector(part, channels, where, what)

    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise fail(f"{where}: eps must be a number between 0 and 1, got {short(eps)}")
    statistics = (None, None)
    if not training:
        if running_mean is None or running_var is None:
            raise fail(f"{where}: in eval mode (training False) it needs running_mean and running_var")
        statistics = (vector(running_mean, "running_mean"), vector(running_var, "running_var"))
    affine = (vector(weight, "weight"), vector(bias, "bias"))
    trace = running()
    path = trace.graph.path  # a torch layer's, read by torch.export: its buffers' state_dict keys
    if running_mean is not None and path and running_inputs():  # eval mode, the running statistics given (forward_eval)
        statistics = tuple(trace.buffer(f"{path}.{name}", (channels,)) for name in ("running_mean", "running_var"))
        return SymbolicTensor(batch_norm_graph(trace.graph, x, *statistics, eps, affine, trace.stem("h")))
    # in training mode, the running statistics are updated as torch updates them
    tracked = (path, momentum) if training and running_mean is not None and path else None
    return SymbolicTensor(batch_norm_graph(trace.graph, x, *statistics, eps, affine, trace.stem("h"), tracked))


functional.__name__ = functional.__qualname__ = "batch_norm"


def aten_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):
    """ATen's batch_norm (what torch.export shows for nn.BatchNorm*): F.batch_norm's arguments in ATen's order."""
    return functional(input, running_mean, running_var, weight, bias, training, momentum, eps)


def aten_batch_norm_eval(input, weight, bias, running_mean, running_var, momentum, eps):
    """ATen's batch norm in eval mode as torch's lowering writes it (run_decompositions, beside an nn.GRU): (output,
    saved mean, saved σ⁻¹), of which the program reads the output."""
    return functional(input, running_mean, running_var, weight, bias, False, momentum, eps), None, None


def aten_batch_norm_functional(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """The same in training mode: (output, saved mean, saved σ⁻¹, new running mean, new running variance), the last
    two outputs of the program that symprop does not return (the generated modules update the buffers). They stand
    for the buffers as they were: a layer called again reads them as its running statistics, and is tracked too."""
    output = functional(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return output, None, None, running_mean, running_var


def aten_batch_norm_no_stats(input, weight, bias, training, momentum, eps):
    """The same without running statistics (track_running_stats=False)."""
    return functional(input, None, None, weight, bias, training, momentum, eps), None, None


def layer(dims: int) -> type:
    """nn.BatchNorm1d or nn.BatchNorm2d."""
    shapes = {1: "(batch, channels) or (batch, channels, length)", 2: "(batch, channels, height, width)"}

    class BatchNorm(Module):
        kind, toml_keys = f"batch_norm{dims}d", ("eps", "momentum")

        def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                     track_running_stats: bool = True):
            super().__init__()
            self.num_features = positive(num_features, f"BatchNorm{dims}d num_features")
            self.eps = fraction(eps, f"BatchNorm{dims}d eps")
            self.momentum, self.affine = momentum, flag(affine, f"BatchNorm{dims}d affine")
            self.track_running_stats = flag(track_running_stats, f"BatchNorm{dims}d track_running_stats")
            self.training = True  # torch's default; eval() sets it False
            self.running = None  # (mean, var) as torch tensors, read from a torch module; None: a fresh layer's
            if affine:
                self.weight = Parameter((num_features,), init="ones")
                self.bias = Parameter((num_features,), init="zeros")

        @classmethod
        def from_torch(cls, module):
            made = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            made.training = module.training
            if module.track_running_stats:  # in eval mode, constants of the derivation
                made.running = (module.running_mean.detach().clone(), module.running_var.detach().clone())
            return made

        @classmethod
        def from_toml(cls, table: Table, width):
            channels = width if isinstance(width, int) and dims == 1 else image_shape(width, dims, cls.kind)[0]
            eps, momentum = table.get("eps", fraction, 1e-5), table.get("momentum", fraction, 0.1)
            return built(lambda: cls(channels, eps, momentum))

        def output_width(self, width):
            return width

        def eval(self):
            """Normalize by the running statistics (as a fresh torch layer holds them: means 0, variances 1)."""
            self.training = False
            return self

        def train(self, mode: bool = True):
            self.training = flag(mode, "train(mode)")
            return self

        def forward(self, x):
            shape = getattr(x, "shape", ())
            if (len(shape) not in ((2, 3) if dims == 1 else (4,))) or shape[1] != self.num_features:
                raise fail(f"{self.describe()} expects {shapes[dims]} with {self.num_features} channels, but what "
                           f"flows in has shape {shape_text(shape)}")
            affine = (self.weight, self.bias) if self.affine else (None, None)
            if not self.track_running_stats:
                return functional(x, None, None, *affine, training=True, eps=self.eps)
            if self.running is not None and not self.training and not running_inputs():  # the torch module's
                return functional(x, *self.running, *affine, training=False, eps=self.eps)
            trace, tracked = running(), None
            if running_inputs():  # eval mode, the running statistics given (forward_eval)
                statistics = [trace.buffer(f"{trace.path_of(self)}.{name}", (self.num_features,))
                              for name in ("running_mean", "running_var")]
            elif self.training:  # the batch's statistics, which the running ones are moved toward
                statistics, tracked = (None, None), (trace.path_of(self), self.momentum)
            else:  # a fresh layer's running statistics: means 0, variances 1
                statistics = (as_value(0.0, "BatchNorm"), as_value(1.0, "BatchNorm"))
            parts = tuple(None if p is None else as_value(p, "BatchNorm") for p in affine)
            return SymbolicTensor(batch_norm_graph(trace.graph, x.value, *statistics, self.eps, parts,
                                                   trace.stem("h"), tracked))

        def symbol_stem(self, name: str, tag: str) -> str:
            return {"weight": "g", "bias": "be"}[name] + tag

        def torch_twin(self):
            import torch

            twin = getattr(torch.nn, f"BatchNorm{dims}d")(self.num_features, self.eps, self.momentum, self.affine,
                                                          self.track_running_stats)
            if self.running is not None:
                twin.running_mean.copy_(self.running[0])
                twin.running_var.copy_(self.running[1])
            return twin.train(self.training)

        def describe(self) -> str:
            options = ("" if self.eps == 1e-5 else f", eps={self.eps}") + ("" if self.affine else ", affine=False")
            return f"BatchNorm{dims}d({self.num_features}{options})" + ("" if self.training else " (eval)")

    BatchNorm.__name__ = BatchNorm.__qualname__ = f"BatchNorm{dims}d"
    BatchNorm.__doc__ = f"torch.nn.BatchNorm{dims}d: each channel normalized over the batch (and positions)."
    return BatchNorm


LOWERED = {"aten._native_batch_norm_legit_no_training.default": aten_batch_norm_eval,
           "aten._native_batch_norm_legit_functional.default": aten_batch_norm_functional,
           "aten._native_batch_norm_legit.no_stats": aten_batch_norm_no_stats}
TORCH = TorchNames(("torch.nn.functional.batch_norm", "torch.batch_norm"), (), "",
                   ("aten.batch_norm.default", *LOWERED))
BatchNorm1d, BatchNorm2d = layer(1), layer(2)
defop("batch_norm", torch=TORCH, functional=functional, front={"aten.batch_norm.default": aten_batch_norm, **LOWERED})
defop("batch_norm1d", layer=BatchNorm1d, torch=TorchNames((), (), "BatchNorm1d", ()),
      init_doc="BatchNorm ones and zeros")
defop("batch_norm2d", layer=BatchNorm2d, torch=TorchNames((), (), "BatchNorm2d", ()),
      init_doc="BatchNorm ones and zeros")
