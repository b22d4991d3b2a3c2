"""Convolutions and poolings against torch.autograd in float64, both generated modules, over drawn shapes, strides,
paddings, dilations and groups (hypothesis, derandomized: the same cases every run)."""

from __future__ import annotations

import math
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ops import case, modules, run

import symprop as S
import symprop.functional as SF
from symprop.check import compare, reference

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
    assert "torch.nn.functional.conv2d(x, w_conv, b_conv, stride=2, padding=1)" in body
    assert "torch.nn.grad.conv2d_weight(x, (4, 2, 3, 3), " in body
    assert "unfold(" not in body and "einsum" not in body


SPEC = """
name = "cnn"
inputs = {inputs}

[[layers]]
type = "conv2d"
out_channels = 2
kernel_size = 3
{more}
[loss]
type = "cross_entropy"
"""


@pytest.mark.parametrize("inputs, more, message", [
    ("6", "", "layers[0].out_channels: conv2d takes (channels, height, width) per sample, and what flows in has "
              "width 6: give inputs = [channels, height, width]"),
    ("[1, 6, 6]", "[[layers]]\ntype = \"linear\"\noutputs = 3\n",
     "layers[1].outputs: linear takes a vector per sample, and what flows in has shape (2, 4, 4): put a layer of "
     "type = \"flatten\" before it"),
    ("[1, 6, 6]", "stride = [1, 2, 3]\n", "layers[0].stride: must be a positive integer or a list of 2, got [1, 2, 3]"),
    ("[1, 6, 0]", "", "inputs: must be a width, or [channels, height, width] for images"),
])
def test_a_spec_cnn_that_does_not_fit_is_refused_in_one_line(inputs, more, message):
    with pytest.raises(S.SymPropError) as raised:
        _load(SPEC.format(inputs=inputs, more=more))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def _load(text: str):
    from symprop.declare.spec import loads

    return loads(text, source="cnn.toml")


def test_a_spec_cnn_agrees_with_autograd():
    """examples/digits_cnn.toml: pooling, convolutions, batch norm, flatten and a linear layer, from TOML."""
    from pathlib import Path

    model = S.load_spec(Path(__file__).parent.parent / "examples" / "digits_cnn.toml")
    params, inputs, t = case(model, "random", torch.float64)
    want_loss, want = reference(model, params, inputs, t)
    for backend, module in modules(model).items():
        _, loss, grads = run(module, backend, params, inputs, t)
        assert abs(loss.item() - want_loss.item()) <= 1e-10 * abs(want_loss.item())
        for key in ("1.weight", "5.weight", "9.weight", "2.weight"):
            assert (grads[key] - want[key]).abs().max() <= 1e-10 * want[key].abs().max(), f"{backend} {key}"


class MnistNet(torch.nn.Module):
    """The MNIST network as pytorch/examples writes it (two convolutions, max_pool2d, dropout, flatten, two linear
    layers, log_softmax), narrowed to 8 and 16 channels on 14x14 images."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, 1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = torch.nn.Dropout(0.25)
        self.dropout2 = torch.nn.Dropout(0.5)
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.nn.functional.relu(self.conv1(x))
        x = torch.nn.functional.relu(self.conv2(x))
        x = torch.nn.functional.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = torch.nn.functional.relu(self.fc1(x))
        x = self.dropout2(x)
        return torch.nn.functional.log_softmax(self.fc2(x), dim=1)


class ResidualBlock(torch.nn.Module):
    """A ResNet basic block: two 3x3 convolutions without bias, each batch-normalized, and the identity added."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels)
        self.fc = torch.nn.Linear(channels, 3)

    def forward(self, x):
        out = torch.nn.functional.relu(self.bn1(self.conv1(x)))
        out = torch.nn.functional.relu(self.bn2(self.conv2(out)) + x)
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(out, 1).flatten(1))


def from_torch_agrees(net, loss, x, t, inputs=None):
    """from_torch (torch.export, or torch.fx given `inputs`) derives `net`; both modules agree with its autograd."""
    net = net.double()
    model = S.from_torch(net, loss, inputs=inputs) if inputs else \
        S.from_torch(net, loss, example_inputs=(x,), example_target=t)
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    net.zero_grad()
    want = loss(net(x), t)
    want.backward()
    for backend, module in modules(model).items():
        _, got, grads = run(module, backend, params, {"x": x}, t)
        assert abs(got.item() - want.item()) <= 1e-10 * abs(want.item()), backend
        for key, p in net.named_parameters():
            assert (grads[key] - p.grad).abs().max() <= 1e-10 * max(p.grad.abs().max().item(), 1e-3), \
                f"{backend} d/d{key}"


def test_pytorch_examples_mnist_network_agrees_with_autograd():
    torch.manual_seed(0)
    x, t = torch.rand(4, 1, 14, 14, dtype=torch.float64), torch.randint(0, 10, (4,))
    from_torch_agrees(MnistNet().eval(), torch.nn.functional.nll_loss, x, t)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_residual_block_with_batch_norm_agrees_with_autograd(mode):
    torch.manual_seed(0)
    block = ResidualBlock()
    for norm in (block.bn1, block.bn2):  # statistics and affine parameters of a trained network
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.5, 0.5)
    x, t = torch.randn(3, 4, 5, 5, dtype=torch.float64), torch.randint(0, 3, (3,))
    from_torch_agrees(block.train(mode == "train"), torch.nn.CrossEntropyLoss(), x, t)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batch_norm_read_by_torch_fx_keeps_the_running_statistics(mode):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2.0)
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    from_torch_agrees(net.train(mode == "train"), torch.nn.MSELoss(), x, t, inputs=3)


def test_the_torch_module_runs_torchs_max_pooling():
    """torch's max pooling, one call, for the max over windows and its indices for δ: no windows, arg-max or fold
    left, and no gather of the maxima that the call has made already."""
    model = S.Model(Body(lambda net, x: SF.max_pool2d(net.conv(x), 2), 4 * 2 * 2, {"conv": S.Conv2d(2, 4, 3)}),
                    S.MSELoss(), inputs={"x": (2, 6, 6)})
    code = S.derive_network(model).render("torch")
    body = code[code.index("def loss_and_gradients"):]
    assert body.count("torch.nn.functional.max_pool2d(") == 1
    pair = re.search(r"(\w+) = torch\.nn\.functional\.max_pool2d\(z_conv, 2, return_indices=True\)\n", body).group(1)
    index = re.search(rf"(\w+) = {pair}\[1\]\n", body).group(1)  # read off the pair, which is freed there
    assert f"= {pair}[0][..., None]" in body and f".scatter_add_(2, {index}.flatten(2), " in body
    assert ".gather(" not in body
    assert not any(word in body for word in ("unfold(", "argmax", "one_hot", "fold("))


@SETTINGS
@given(poolings().filter(lambda drawn: drawn[1] == "max"), st.sampled_from(["random", "kinks"]),
       st.sampled_from(["relu", "leaky_relu", "hardtanh"]))
def test_an_activation_before_max_pooling_agrees_with_autograd(drawn, regime, activation):
    """A ReLU's step moves past the pooling's scatter, H(x) at the arg-max being H(top): overlapping windows, and
    ties at 0 (the kinks regime), where the arg-max of x and of the ReLU's zeros differ, and the gradient is 0."""
    dims, _, kernel, stride, padding, dilation, ceil, _, sizes = drawn
    pool, act = getattr(SF, f"max_pool{dims}d"), getattr(SF, activation)

    def body(net, x):
        return pool(act(net.mix(x)), kernel, stride, padding, dilation, ceil_mode=ceil)
    out = tuple(out_size(n, k, s, p, d, ceil) for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation,
                                                                        strict=True))
    mix = (S.Conv1d if dims == 1 else S.Conv2d)(2, 2, 1)
    agrees(body, (2, *sizes), (2, *out), {"mix": mix}, regime)


def test_a_relus_step_runs_over_the_pooled_positions():
    """conv → ReLU → max pooling: δ·H(h) after the scatter is the scatter of δ·H(top), so the backward pass reads
    the pooled maxima, not the ReLU's output, whose array dies with the forward pass."""
    model = S.Model(Body(lambda net, x: SF.max_pool2d(SF.relu(net.conv(x)), 2), 4 * 2 * 2,
                         {"conv": S.Conv2d(2, 4, 3)}), S.MSELoss(), inputs={"x": (2, 6, 6)})
    for backend in ("numpy", "torch"):
        code = S.derive_network(model).render(backend)
        body = code[code.index("def loss_and_gradients"):]
        backward = body[body.index("total = "):body.index("return ")]
        assert re.search(r"dtop_masked = dtop \* .*\btop\b", backward), backend  # δ·H(top), then the scatter
        assert not re.search(r"\bh\b", backward), backend  # the ReLU's output h is read by the pooling alone


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_channel_dropout_agrees_with_autograd_given_its_masks(mode):
    """nn.Dropout2d: the identity in eval mode; in training mode a mask per example and channel, given."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Dropout2d(0.5), torch.nn.Flatten(),
                              torch.nn.Linear(36, 3)).double().train(mode == "train")
    x, t = torch.randn(3, 1, 5, 5, dtype=torch.float64), torch.tensor([0, 1, 2])
    model = S.from_torch(net, torch.nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t)
    assert ("dropout_mask" in model.input_shapes) == (mode == "train")
    if mode == "train":
        assert model.input_shapes["dropout_mask"][1:] == (4, 1, 1)
    rows = compare(model, {b: SimpleNamespace(**ns) for b, ns in modules(model).items()})
    assert all(row.passed for row in rows), rows


@pytest.mark.parametrize("make, message", [
    (lambda: torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
     "0: nn.Conv2d: padding_mode 'reflect' is not supported by symprop (only 'zeros')"),
    (lambda: torch.nn.ReflectionPad2d(1), "F.pad: mode 'reflect' is not supported by symprop"),
    (lambda: torch.nn.MaxPool2d(2, return_indices=True), "MaxPool2d(return_indices=True)"),
])
def test_what_cnns_use_and_symprop_lacks_is_refused_in_one_line(make, message):
    with pytest.raises(S.SymPropError) as raised:
        S.from_torch(torch.nn.Sequential(make()), lambda y, t: (y[0] if isinstance(y, tuple) else y).mean(),
                     example_inputs=(torch.randn(2, 1, 6, 6),), example_target=torch.zeros(2))
    assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_check_converts_a_float32_batch_norm_model_and_momentum_none_derives():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2, momentum=None), torch.nn.Flatten(),
                              torch.nn.Linear(18, 3))  # float32, as torch makes it
    model = S.from_torch(net, torch.nn.CrossEntropyLoss(), example_inputs=(torch.randn(4, 1, 5, 5),),
                         example_target=torch.tensor([0, 1, 2, 0]))
    rows = compare(model, {b: SimpleNamespace(**ns) for b, ns in modules(model).items()})
    assert all(row.passed for row in rows), rows


@pytest.mark.parametrize("norm", ["parametrizations", "legacy"])
def test_weight_norm_on_a_convolution_agrees_with_autograd(norm):
    """The TCN idiom: weight_norm over each output channel's kernel (a norm along two axes)."""
    torch.manual_seed(0)
    wrap = torch.nn.utils.parametrizations.weight_norm if norm == "parametrizations" else torch.nn.utils.weight_norm
    net = torch.nn.Sequential(wrap(torch.nn.Conv1d(2, 4, 3)), torch.nn.Flatten(), torch.nn.Linear(32, 3)).double()
    x, t = torch.randn(3, 2, 10, dtype=torch.float64), torch.tensor([0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own notes on weight_norm
        model = S.from_torch(net, torch.nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t)
    rows = compare(model, {b: SimpleNamespace(**ns) for b, ns in modules(model).items()})
    assert all(row.passed for row in rows), rows


@pytest.mark.parametrize("make", [lambda: torch.nn.GroupNorm(2, 4), lambda: torch.nn.InstanceNorm2d(4),
                                  lambda: torch.nn.InstanceNorm2d(4, affine=True)])
def test_group_and_instance_norm_agree_with_autograd(make):
    torch.manual_seed(0)
    norm = make()
    for parameter in norm.parameters():
        parameter.data.uniform_(0.5, 1.5)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), norm, torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(36, 3))
    x, t = torch.randn(3, 1, 5, 5, dtype=torch.float64), torch.tensor([0, 1, 2])
    from_torch_agrees(net, torch.nn.CrossEntropyLoss(), x, t)


def test_a_grouped_convolution_runs_torchs_kernels_too():
    """A depthwise convolution (groups = channels) and a grouped one, forward and both gradients, as torch's calls."""
    model = S.Model(Body(lambda net, x: net.depthwise(net.grouped(x)), 4 * 3 * 3,
                         {"grouped": S.Conv2d(4, 4, 3, groups=2, padding=1), "depthwise": S.Conv2d(4, 4, 3, groups=4)}),
                    S.MSELoss(), inputs={"x": (4, 5, 5)})
    body = S.derive_network(model).render("torch")
    body = body[body.index("def loss_and_gradients"):]
    assert "padding=1, groups=2)" in body and body.count("groups=4)") == 3
    assert "einsum" not in body and "unfold(" not in body


class GroupedThenMean(torch.nn.Module):
    """A depthwise or grouped convolution whose output is averaged (or summed) at once: its δ is one number per
    channel, broadcast over the positions."""

    def __init__(self, dims: int, groups: int, reduce: str):
        super().__init__()
        conv = getattr(torch.nn, f"Conv{dims}d")
        self.first, self.grouped, self.reduce = conv(2, 4, 3, padding=1), conv(4, 4, 3, groups=groups), reduce
        self.axes = tuple(range(2, 2 + dims))

    def forward(self, x):
        h = self.grouped(torch.tanh(self.first(x)))
        return h.mean(self.axes) if self.reduce == "mean" else h.sum(self.axes)


@pytest.mark.parametrize("dims, groups, reduce", [(2, 4, "mean"), (1, 2, "sum")])
def test_a_grouped_convolution_whose_output_is_averaged_agrees_with_autograd(dims, groups, reduce):
    """The torch module gave the kernel's calls the δ before its broadcast over the positions, and crashed."""
    torch.manual_seed(0)
    x, t = torch.randn(3, 2, *(7,) * dims, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    from_torch_agrees(GroupedThenMean(dims, groups, reduce), torch.nn.MSELoss(), x, t)


def test_batch_norms_delta_reads_as_the_books_three_terms():
    """Σ (x − μ) = 0 over the batch and positions, as over a layer norm's axis: δ = γ·rstd·(h̄ − x̂·Σ(h̄·x̂)/M −
    Σh̄/M), one line, where it was x̄c, then x̄c − Σx̄c/M. It reads x̂, not x − μ: the backward pass keeps x̂ alone,
    and each Σ is named as the part of a cotangent it is (sum_drstd: σ⁻¹·δσ⁻¹ = Σ(h̄·x̂))."""
    model = S.Model(Body(lambda net, x: net.norm(net.conv(x)), 2 * 4 * 4,
                         {"conv": S.Conv2d(1, 2, 3, bias=False), "norm": S.BatchNorm2d(2)}),
                    S.MSELoss(), inputs={"x": (1, 6, 6)})
    steps = S.derive_network(model).steps()
    assert "dxc_norm" not in steps
    assert all(steps["dz_conv"].has(sp.Symbol(name, real=True))
               for name in ("dh_norm", "xhat_norm", "sum_drstd_norm", "sum_dsum_norm"))
    assert not any(step.has(sp.Symbol("xc_norm", real=True)) for name, step in steps.items() if name.startswith("d"))


def batch_norm_net(momentum, activation=torch.nn.ReLU):
    """Both batch norms: BatchNorm2d on images, BatchNorm1d on features (float64, as torch trains it here)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3, momentum=momentum), activation(),
                               torch.nn.Flatten(), torch.nn.Linear(27, 4), torch.nn.BatchNorm1d(4, momentum=momentum),
                               torch.nn.Linear(4, 2)).double()


def declared(net, momentum, front: str):
    """The same network as symprop reads it: through torch.export, torch.fx, or declared with symprop's layers."""
    loss, x = torch.nn.CrossEntropyLoss(), torch.randn(4, 1, 5, 5, dtype=torch.float64)
    if front in ("export", "lowered"):
        return S.from_torch(net, loss, example_inputs=(x,), example_target=torch.tensor([0, 1, 0, 1]))
    if front == "fx":
        return S.from_torch(net, loss, inputs={"x": (1, 5, 5)})
    return S.Model(S.Sequential(S.Conv2d(1, 3, 3), S.BatchNorm2d(3, momentum=momentum), S.ReLU(), S.Flatten(),
                                S.Linear(27, 4), S.BatchNorm1d(4, momentum=momentum), S.Linear(4, 2)),
                   S.CrossEntropyLoss(), inputs={"x": (1, 5, 5)})


@pytest.mark.parametrize("front", ["module", "fx", "export", "lowered"])
@pytest.mark.parametrize("momentum", [0.3, None])
def test_training_moves_the_running_statistics_as_torch_does(front, momentum):
    """loss_and_gradients(..., buffers) moves each batch norm's running statistics as torch's forward does in training
    mode, batch after batch (momentum None: the mean over the batches so far). "lowered": with a Mish, which torch's
    decomposition table lowers, and which makes the batch norms its functional forms (their new statistics outputs
    of the program)."""
    net = batch_norm_net(momentum, torch.nn.Mish if front == "lowered" else torch.nn.ReLU)
    loaded = modules(declared(net, momentum, front))
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    buffers = {"numpy": loaded["numpy"]["init_buffers"](), "torch": loaded["torch"]["init_buffers"]()}
    assert set(buffers["torch"]) == {k for k, _ in net.named_buffers()}
    for step in range(3):
        x, t = torch.randn(6, 1, 5, 5, dtype=torch.float64) + step, torch.randint(0, 2, (6,))
        net(x)
        loaded["numpy"]["loss_and_gradients"]({k: v.numpy() for k, v in params.items()}, x.numpy(), t.numpy(),
                                              buffers["numpy"])
        loaded["torch"]["loss_and_gradients"](params, x, t, buffers["torch"])
        for key, want in net.state_dict().items():
            if key in buffers["torch"]:
                for backend, got in buffers.items():
                    error = (torch.as_tensor(got[key]) - want).abs().max().item()
                    assert error <= 1e-12 * max(want.abs().max().item(), 1.0), f"{backend} {key} after {step + 1}"
    # then, in eval mode, the network normalizes by them: forward_eval
    x = torch.randn(5, 1, 5, 5, dtype=torch.float64)
    want = net.eval()(x).detach()
    for backend, module in loaded.items():
        arrays = {k: v.numpy() for k, v in params.items()} if backend == "numpy" else params
        got = torch.as_tensor(module["forward_eval"](arrays, x.numpy() if backend == "numpy" else x, buffers[backend]))
        assert (got - want).abs().max().item() <= 1e-12 * want.abs().max().item(), backend


class SharedEncoder(torch.nn.Module):
    """One encoder with a batch norm, called on two inputs (a Siamese network): torch moves the running statistics
    twice a forward, by a's batch and then by b's. With a Mish, which torch's table lowers, the second call reads the
    statistics that the first returns (the batch norm's lowered form)."""

    def __init__(self, activation=torch.nn.Identity):
        super().__init__()
        self.encode = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6, momentum=0.3))
        self.act, self.out = activation(), torch.nn.Linear(6, 2)

    def forward(self, a, b):
        return self.out(self.act(self.encode(a))) - self.out(self.encode(b))


@pytest.mark.parametrize("front", ["fx", "export", "lowered"])
def test_a_batch_norm_called_twice_moves_its_statistics_twice(front):
    torch.manual_seed(0)
    net = SharedEncoder(torch.nn.Mish if front == "lowered" else torch.nn.Identity).double()
    a, b = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64) + 0.5
    t = torch.randn(5, 2, dtype=torch.float64)
    model = S.from_torch(net, torch.nn.MSELoss(), inputs={"a": 4, "b": 4}) if front == "fx" else \
        S.from_torch(net, torch.nn.MSELoss(), example_inputs=(a, b), example_target=t)
    loaded = modules(model)
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    buffers = {"numpy": loaded["numpy"]["init_buffers"](), "torch": loaded["torch"]["init_buffers"]()}
    want_loss = torch.nn.functional.mse_loss(net(a, b), t)
    want_loss.backward()
    got = loaded["torch"]["loss_and_gradients"](params, a, b, t, buffers["torch"])
    assert abs(got[0].item() - want_loss.item()) <= 1e-12 and all(
        (got[1][k] - p.grad).abs().max() <= 1e-12 for k, p in net.named_parameters())
    loaded["numpy"]["loss_and_gradients"]({k: v.numpy() for k, v in params.items()}, a.numpy(), b.numpy(), t.numpy(),
                                          buffers["numpy"])
    for key, want in net.state_dict().items():
        if key in buffers["torch"]:
            for backend, got in buffers.items():
                assert (torch.as_tensor(got[key]) - want).abs().max().item() <= 1e-12, f"{backend} {key}"


def test_the_torch_module_keeps_and_updates_the_running_statistics():
    """Module(state_dict) takes torch's buffers; m(x, t) in training mode updates them as torch's forward does, and in
    eval mode leaves them; its state_dict loads back into torch's network."""
    net = batch_norm_net(0.1)
    namespace = modules(declared(net, 0.1, "module"))["torch"]
    made = namespace["Module"](net.state_dict())
    x, t = torch.randn(6, 1, 5, 5, dtype=torch.float64), torch.randint(0, 2, (6,))
    made(x, t).backward()
    net(x)
    assert all(torch.allclose(made.state_dict()[k], v, rtol=1e-12, atol=0) for k, v in net.state_dict().items())
    made.eval()(x, t)
    assert made.state_dict()["1.num_batches_tracked"].item() == 1
    net.load_state_dict(made.state_dict())
    assert torch.allclose(made.predict(x), net.eval()(x), rtol=1e-12, atol=0)  # eval mode: the running statistics
    assert torch.allclose(made.train().predict(x), net.train()(x), rtol=1e-12, atol=0)  # training: the batch's


@pytest.mark.parametrize("front", ["fx", "export", "lowered"])
def test_check_compares_the_running_statistics(front):
    """symprop check's torch run moves them as torch does, whichever front read the model (torch.export's lowered
    program returns its new statistics as outputs)."""
    activation = torch.nn.Mish if front == "lowered" else torch.nn.ReLU
    model = declared(batch_norm_net(0.1, activation), 0.1, front)
    rows = compare(model, {b: SimpleNamespace(**ns) for b, ns in modules(model).items()})
    names = {row.name for row in rows}
    assert {"1.running_mean (numpy)", "5.running_var (torch)", "5.num_batches_tracked (torch)"} <= names
    assert all(row.passed for row in rows), rows


@pytest.mark.parametrize("window", [((2, 2, 1), (2, 2, 1)), ((3, 2, 1), (2, 1, 2)), ((3, 1, 1),)])
def test_numpys_pooling_takes_the_first_arg_max_at_ties_and_nans(window):
    """The NumPy module's pooling helpers route δ as the derived one-hot of np.argmax over each flattened window does:
    to the first of equal entries, and to a window's first NaN."""
    import itertools

    dims = len(window)
    size, stride, dilation = (tuple(w[i] for w in window) for i in range(3))
    shape = (2, 7, 7) if dims == 2 else (2, 9)
    positions = tuple((n - (k - 1) * d - 1) // s + 1 for n, (k, s, d) in zip(shape[1:], window, strict=True))
    pool = SF.max_pool2d if dims == 2 else SF.max_pool1d
    mix = (S.Conv1d if dims == 1 else S.Conv2d)(2, 2, 1)  # a parameter before the pooling: δ flows through it
    model = S.Model(Body(lambda net, x: pool(net.mix(x), size, stride, dilation=dilation), 2 * math.prod(positions),
                         {"mix": mix}), S.MSELoss(), inputs={"x": shape})
    namespace = modules(model)["numpy"]
    assert "pool_argmax" in namespace, "the plan did not take the pooling calls"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (4, *shape)).astype(np.float64)  # many ties
    x[0, 0, ...] = np.nan
    x[1, 1].flat[[3, 5]] = np.nan
    offsets = list(itertools.product(*(range(k) for k in size)))  # a window's entries, row-major
    def entries(offset):  # the entries at one kernel offset of every window
        return x[(slice(None), slice(None), *(slice(o * d, o * d + s * (p - 1) + 1, s)
                                              for o, (_, s, d), p in zip(offset, window, positions, strict=True)))]

    flat = np.stack([entries(offset) for offset in offsets], axis=-1)
    best, index = namespace["pool_argmax"](x, window, positions)  # the maxima and where they are, in one pass
    assert (index == np.argmax(flat, axis=-1)).all()
    assert np.array_equal(best, np.max(flat, axis=-1), equal_nan=True)
    assert np.array_equal(namespace["pool_max"](x, window, positions), np.max(flat, axis=-1), equal_nan=True)
    delta = rng.standard_normal(index.shape)
    want = np.zeros_like(x)
    for place in np.ndindex(*index.shape):  # the adjoint, entry by entry
        offset = offsets[index[place]]
        target = tuple(p * s + o * d for p, o, (_, s, d) in zip(place[2:], offset, window, strict=True))
        want[place[:2] + target] += delta[place]
    assert np.allclose(namespace["pool_scatter"](delta, index, window, x.shape), want, rtol=0, atol=1e-12)


class Strided(torch.nn.Module):
    """Large enough that the NumPy module copies its windows a chunk of samples at a time (plan/chunks.py)."""

    def __init__(self, dims: int):
        super().__init__()
        conv = torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d
        self.conv1 = conv(4, 6, 5 if dims == 1 else 3, stride=2, padding=1, dilation=2 if dims == 1 else 1, groups=2)
        self.conv2 = conv(6, 4, 3, dilation=2 if dims == 2 else 1)
        self.fc = torch.nn.LazyLinear(3)

    def forward(self, x):
        h = torch.tanh(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(h, 1))


@pytest.mark.parametrize("dims", [1, 2])
def test_convolutions_computed_a_chunk_of_samples_at_a_time_agree_with_autograd(dims):
    """Strides, dilation, groups and padding, with a batch that the chunks do not divide (19: 16 and 3)."""
    torch.manual_seed(0)
    x = torch.randn(19, 4, *((900,) if dims == 1 else (44, 44)), dtype=torch.float64)
    t = torch.randint(0, 3, (19,))
    net = Strided(dims)
    net(x.float())  # sizes the lazy layer
    model = S.from_torch(net.double(), torch.nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t)
    assert "samples at a time" in S.derive_network(model).render("numpy")
    from_torch_agrees(net, torch.nn.CrossEntropyLoss(), x, t)
