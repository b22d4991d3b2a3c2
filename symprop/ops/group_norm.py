"""group_norm: each sample's channels in groups, each group normalized over its channels and positions, then scaled
and shifted per channel; F.group_norm, nn.GroupNorm, and instance norm (one channel per group: F.instance_norm,
nn.InstanceNorm1d/2d with their own statistics), and ATen's. A layer norm of each group's entries (layer_norm.py),
so that its backward pass is the layer norm's, derived."""

from __future__ import annotations

import math

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import flag, fraction, positive, short
from ..declare.tensor import Parameter, SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..graph import Graph, Value
from .batch_norm import channel_vector, scaled_per_channel
from .conv import reshaped
from .layer_norm import layer_norm_graph
from .registry import TorchNames, defop


def group_norm_graph(g: Graph, x: Value, groups: int, eps: float, affine: tuple, name: str) -> Value:
    """x (batch, channels, *positions) normalized over each group of channels/groups channels and the positions."""
    tag = name[1:] if name[0] == "h" else "_" + name
    rows = reshaped(g, x, (x.shape[0], groups, math.prod(x.shape[1:]) // groups), f"grp{tag}")
    normed = reshaped(g, layer_norm_graph(g, rows, eps, None, f"n{tag}"), x.shape, f"xhat{tag}")
    return scaled_per_channel(g, normed, affine, name)


def functional(input, num_groups, weight=None, bias=None, eps=1e-5):
    """torch's F.group_norm."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(TORCH.functions[0])(input, num_groups, resolved(weight), resolved(bias), eps)
    where = "F.group_norm"
    x = symbolic(input, where)
    if len(x.shape) < 3 or isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 or \
            x.shape[1] % num_groups:
        raise fail(f"{where}: the input must be (batch, channels, ...) with channels divisible by num_groups, got "
                   f"{shape_text(x.shape)} and {short(num_groups)} groups")
    affine = (channel_vector(weight, x.shape[1], where, "weight"), channel_vector(bias, x.shape[1], where, "bias"))
    trace = running()
    return SymbolicTensor(group_norm_graph(trace.graph, x, num_groups, eps, affine, trace.stem("h")))


functional.__name__ = functional.__qualname__ = "group_norm"


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """torch's F.instance_norm with each sample's own statistics: a group norm of one channel per group."""
    input = resolved(input)
    if in_torch(input):
        return torch_function("torch.nn.functional.instance_norm")(
            input, resolved(running_mean), resolved(running_var), resolved(weight), resolved(bias), use_input_stats,
            momentum, eps)
    if not use_input_stats:
        raise fail("instance norm with running statistics (track_running_stats=True, in eval mode) is not supported "
                   "by symprop")
    x = symbolic(input, "F.instance_norm")
    return functional(input, x.shape[1] if len(x.shape) > 1 else 1, weight, bias, eps)


class GroupNorm(Module):
    """torch.nn.GroupNorm."""

    kind, toml_keys = "group_norm", ()

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_groups, self.num_channels = positive(num_groups, "num_groups"), positive(num_channels, "num_channels")
        self.eps, self.affine = fraction(eps, "eps"), flag(affine, "affine")
        if num_channels % num_groups:
            raise fail(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
        if affine:
            self.weight = Parameter((num_channels,), init="ones")
            self.bias = Parameter((num_channels,), init="zeros")

    @classmethod
    def from_torch(cls, module):
        return cls(module.num_groups, module.num_channels, module.eps, module.affine)

    def forward(self, x):
        affine = (self.weight, self.bias) if self.affine else (None, None)
        return functional(x, self.num_groups, *affine, eps=self.eps)

    def symbol_stem(self, name: str, tag: str) -> str:
        return {"weight": "g", "bias": "be"}[name] + tag

    def torch_twin(self):
        import torch

        return torch.nn.GroupNorm(self.num_groups, self.num_channels, self.eps, self.affine)

    def describe(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels}{'' if self.affine else ', affine=False'})"


TORCH = TorchNames(("torch.nn.functional.group_norm", "torch.group_norm"), (), "GroupNorm",
                   ("aten.group_norm.default", "aten.instance_norm.default"))
defop("group_norm", torch=TORCH, layer=GroupNorm, functional=functional, init_doc="GroupNorm ones and zeros",
      front={"aten.group_norm.default": lambda input, num_groups, weight=None, bias=None, eps=1e-5,
             cudnn_enabled=True: functional(input, num_groups, weight, bias, eps),
             "aten.instance_norm.default": lambda input, weight, bias, running_mean, running_var, use_input_stats,
             momentum, eps, cudnn_enabled=True: instance_norm(input, running_mean, running_var, weight, bias,
                                                               use_input_stats, momentum, eps)})
