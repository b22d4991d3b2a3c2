"""Convolutions and poolings against torch.autograd in float64, both generated modules, over drawn shapes, strides,
paddings, dilations and groups (hypothesis, derandomized: the same cases every run)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ops import case, modules, run

import symprop as S
import symprop.functional as SF
from symprop.check import reference

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Body(S.Module):
    """`body` on the input, then a linear head on its flattened output."""

    def __init__(self, body, width: int, parameters: dict):
        super().__init__()
        self.body, self.head = body, S.Linear(width, 2)
        for name, parameter in parameters.items():
            setattr(self, name, parameter)

    def forward(self, x):
        return self.head(self.body(self, x).flatten(1))


def agrees(body, shape: tuple, out_shape: tuple, parameters: dict | None = None, regime: str = "random") -> None:
    """The model's loss and every gradient, in both generated modules, within 1e-10 of torch's (relative to the
    largest entry)."""
    model = S.Model(Body(body, math.prod(out_shape), parameters or {}), S.MSELoss(), inputs={"x": shape})
    params, inputs, t = case(model, regime, torch.float64)
    want_loss, want = reference(model, params, inputs, t)
    for backend, module in modules(model).items():
        _, loss, grads = run(module, backend, params, inputs, t)
        assert abs(loss.item() - want_loss.item()) <= 1e-10 * max(1.0, abs(want_loss.item())), backend
        for key, value in want.items():
            scale = max(value.abs().max().item(), 1e-300)
            assert (grads[key] - value).abs().max().item() <= 1e-10 * max(scale, 1.0), f"{backend} d/d{key}"


def out_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool = False) -> int:
    """torch's output size along one axis (its documented formula)."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    count = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (count - 1) * stride >= size + pad:
        count -= 1
    return count


@st.composite
def convolutions(draw):
    dims = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2, 3]))
    channels, outputs = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    same = set(stride) == {1} and draw(st.booleans())
    padding = "same" if same else tuple(draw(st.integers(0, 2)) for _ in range(dims))
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    sizes = tuple(draw(st.integers(max(r, 2), r + 4)) for r in reach)
    bias = draw(st.booleans())
    return dims, groups, channels, outputs, kernel, stride, dilation, padding, sizes, bias


@SETTINGS
@given(convolutions())
def test_convolution_agrees_with_autograd(drawn):
    dims, groups, channels, outputs, kernel, stride, dilation, padding, sizes, bias = drawn
    layer = (S.Conv1d if dims == 1 else S.Conv2d)(channels, outputs, kernel, stride, padding, dilation, groups, bias)
    pads = (0,) * dims if padding == "same" else padding
    out = sizes if padding == "same" else tuple(
        out_size(n, k, s, p, d) for n, k, s, p, d in zip(sizes, kernel, stride, pads, dilation, strict=True))
    agrees(lambda net, x: net.conv(x), (channels, *sizes), (outputs, *out), {"conv": layer})


@st.composite
def poolings(draw):
    dims = draw(st.sampled_from([1, 2]))
    kind = draw(st.sampled_from(["max", "avg"]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims)) if kind == "max" else (1,) * dims
    ceil = kind == "max" and draw(st.booleans())
    include = draw(st.booleans())
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    sizes = tuple(draw(st.integers(max(r, 2), r + 4)) for r in reach)
    return dims, kind, kernel, stride, padding, dilation, ceil, include, sizes


@SETTINGS
@given(poolings(), st.sampled_from(["random", "kinks"]))
def test_pooling_agrees_with_autograd(drawn, regime):
    dims, kind, kernel, stride, padding, dilation, ceil, include, sizes = drawn
    if kind == "max":
        pool = getattr(SF, f"max_pool{dims}d")

        def body(net, x):
            return pool(net.mix(x), kernel, stride, padding, dilation, ceil_mode=ceil)
    else:
        pool = getattr(SF, f"avg_pool{dims}d")

        def body(net, x):
            return pool(net.mix(x), kernel, stride, padding, count_include_pad=include)
    out = tuple(out_size(n, k, s, p, d, ceil) for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation,
                                                                        strict=True))
    mix = (S.Conv1d if dims == 1 else S.Conv2d)(2, 2, 1)  # so that the kinks regime makes ties: every entry 0
    agrees(body, (2, *sizes), (2, *out), {"mix": mix}, regime)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pooling_agrees_with_autograd(dims, kind):
    pool = getattr(SF, f"adaptive_{kind}_pool{dims}d")
    sizes, out = ((6,), (3,)) if dims == 1 else ((6, 4), (2, 1))
    agrees(lambda net, x: pool(x, out), (2, *sizes), (2, *out))


def test_the_torch_module_runs_torchs_convolution_kernels():
    """torch's calls for the convolution and both its gradients (groups 1), and no windows left for them."""
    model = S.Model(Body(lambda net, x: net.conv(x), 4 * 4 * 4, {"conv": S.Conv2d(2, 4, 3, stride=2, padding=1)}),
                    S.MSELoss(), inputs={"x": (2, 7, 7)})
    code = S.derive_network(model).render("torch")
    body = code[code.index("def loss_and_gradients"):]
    assert "torch.nn.functional.conv2d(x, w_conv, stride=2, padding=1)" in body
    assert "torch.nn.grad.conv2d_weight(x, (4, 2, 3, 3), " in body
    assert "unfold(" not in body and "einsum" not in body
