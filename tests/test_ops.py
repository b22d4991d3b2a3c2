"""Every op in the registry, one row each: its value and its derivative against torch's own function, through both
generated modules (NumPy and torch), at random points, at its kinks and at ±overflow (±90 in float32, ±800 in
float64), in float32 and in float64.

A new op is one module in symprop/ops/ and one row here; `test_every_op_has_a_row` keeps the table whole. The rows
of layers, losses and composites also check second derivatives: their Hessian-vector product (each primitive's jvp,
forward mode over the gradient program) against torch's double backward.

Elementwise ops are checked one entry at a time: L = Σ f(x + a) at x = 0, so that the forward value is f(a) and
dL/da is f′(a). Layers, losses and composites are checked as small models against the same model run in torch
(each layer as its torch.nn twin, each loss as torch's function), with their parameters and inputs drawn at random,
then pushed to their kinks and to ±overflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import symprop as S
import symprop.functional as SF
from symprop.check import random_batch, reference
from symprop.derivation import Derivation
from symprop.ops.registry import OPS, lookup

DTYPES = {"float64": torch.float64, "float32": torch.float32}
FAR = {torch.float64: 800.0, torch.float32: 90.0}  # where exp overflows
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


# -- how the tables are checked ------------------------------------------------------------------------------
def modules(model, hvp: bool = False):
    """The generated NumPy and torch modules of a model, loaded (`hvp`: with hvp)."""
    derivation = Derivation(model, hvp=hvp)
    loaded = {}
    for backend in ("numpy", "torch"):
        namespace: dict = {}
        exec(compile(derivation.render(backend), f"{model.name}_{backend}", "exec"), namespace)  # noqa: S102
        loaded[backend] = namespace
    return loaded


def run(module: dict, backend: str, params: dict, inputs: dict, t):
    """(output, loss, gradients) of a generated module, as torch tensors; each gradient in its parameter's dtype (a
    float32 model computed partly in float64 would be slower and return what it was not given)."""
    if backend == "numpy":
        as_numpy = {k: v.numpy() for k, v in params.items()}
        arrays = [v.numpy() for v in inputs.values()]
        with np.errstate(all="ignore"):  # overflow in a branch np.select leaves out: the value is still right
            y = module["forward"](as_numpy, *arrays)
            loss, grads = module["loss_and_gradients"](as_numpy, *arrays, t.numpy())
        y, loss, grads = torch.as_tensor(np.asarray(y)), torch.as_tensor(np.asarray(loss)), \
            {k: torch.as_tensor(np.asarray(v)) for k, v in grads.items()}
    else:
        y = module["forward"](params, *inputs.values())
        loss, grads = module["loss_and_gradients"](params, *inputs.values(), t)
    for key, value in grads.items():
        assert value.dtype == params[key].dtype, f"{backend}: d/d{key} is {value.dtype}, {key} {params[key].dtype}"
    return y, loss, grads


def close(ours, theirs, exact, dtype, what: str, tolerance: float = 0.0, floor: float = 0.0) -> None:
    """Where torch's value is finite, ours is finite and within tolerance (relative to torch's largest finite entry,
    or within `floor`, the rounding noise of the computation); where it is not, ours is the same inf or nan. In
    float32, where torch's own float32 value is further than that from the float64 one, ours may be up to 4 times as
    far (two float32 computations can't agree more closely)."""
    ours, theirs, exact = (torch.as_tensor(v).double().reshape(torch.as_tensor(theirs).shape)
                           for v in (ours, theirs, exact))
    finite = torch.isfinite(theirs)
    assert torch.equal(torch.isfinite(ours), finite), f"{what}: finite where torch's is not, or the other way round"
    same_kind = torch.isnan(ours[~finite]) == torch.isnan(theirs[~finite])
    assert bool(same_kind.all()) and torch.equal(ours[~finite & ~torch.isnan(theirs)],
                                                 theirs[~finite & ~torch.isnan(theirs)]), f"{what}: not torch's inf"
    if not finite.any():
        return
    scale = max(theirs[finite].abs().max().item(), floor / max(TOLERANCE[dtype], tolerance), 1e-30)
    error = (ours[finite] - theirs[finite]).abs().max().item() / scale
    if error <= max(TOLERANCE[dtype], tolerance):
        return
    assert dtype == torch.float32, f"{what}: relative error {error:.2e}"
    own = (theirs[finite] - exact[finite]).abs().max().item() / scale
    mine = (ours[finite] - exact[finite]).abs().max().item() / scale
    assert mine <= max(4 * own, TOLERANCE[dtype]), f"{what}: relative error {error:.2e} ({mine:.2e} from float64)"


# -- elementwise ops ---------------------------------------------------------------------------------------------
def points(op, options: dict, dtype, kinks=None) -> list[float]:
    """Entries to check f at: random ones, the kinks (and either side), and ±overflow, each inside the domain."""
    rng = np.random.default_rng(0)
    low, high = op.domain
    far = FAR[dtype]
    kinks = list(kinks if kinks is not None else op.kinks) + \
        ([options.get("threshold", 20.0) / options.get("beta", 1.0)] if "threshold" in options else [])
    around = [k + d for k in kinks for d in (0.0, -1e-3, 1e-3)]
    values = list(rng.normal(size=6) * 2) + around + [far, -far, far / 2, -far / 2, 0.0]
    if low is not None:
        values = [abs(v) + low + 1e-3 if v <= low else v for v in values]
    if high is not None:
        values = [v if v < high else high - 1e-2 for v in values]
        values = [v if low is None or v > low else (low + high) / 2 for v in values]
    return values


class Unary(S.Module):
    def __init__(self, width, apply):
        super().__init__()
        self.a, self.apply = S.Parameter((width,)), apply

    def forward(self, x):
        return self.apply(x + self.a)


class Binary(S.Module):
    def __init__(self, width, apply):
        super().__init__()
        self.a, self.b, self.apply = S.Parameter((width,)), S.Parameter((width,)), apply

    def forward(self, x):
        return self.apply(x + self.a, x + self.b)


def symprop_call(op, options):
    """How a user calls the op: F.<name>(x, **options), S.<Layer>(**options)(x), or symprop.<name>(x)."""
    if op.functional is not None:
        return lambda *xs: op.functional(*xs, **options)
    if op.layer_class is not None:
        layer = op.layer_class(**options)
        return lambda x: layer(x)
    return lambda *xs: op.public(*xs, **options)


def torch_call(op, options):
    name = op.torch.functions[0] if op.torch.functions else None
    if name is None:  # a layer only (nn.Identity)
        return getattr(torch.nn, op.torch.module)(**options)
    module, _, function = name.rpartition(".")
    given = op.meaningful({**{p.name: p.default for p in op.params}, **options}) if op.params else options
    return lambda *xs: getattr(importlib.import_module(module), function)(*xs, **given)


POINTWISE = {  # row -> (op, options): every elementwise op, some with options other than the default
    "sigmoid": ("sigmoid", {}), "tanh": ("tanh", {}), "relu": ("relu", {}), "gelu": ("gelu", {}),
    "gelu-tanh": ("gelu", {"approximate": "tanh"}), "softplus": ("softplus", {}),
    "softplus-beta": ("softplus", {"beta": 2.0, "threshold": 10.0}), "silu": ("silu", {}), "elu": ("elu", {}),
    "elu-alpha": ("elu", {"alpha": 0.5}), "leaky_relu": ("leaky_relu", {}),
    "leaky_relu-slope": ("leaky_relu", {"negative_slope": 0.2}), "hardswish": ("hardswish", {}),
    "hardsigmoid": ("hardsigmoid", {}), "identity": ("identity", {}), "exp": ("exp", {}), "log": ("log", {}),
    "sqrt": ("sqrt", {}), "abs": ("abs", {}), "sin": ("sin", {}), "cos": ("cos", {}), "tan": ("tan", {}),
    "atan": ("atan", {}), "sinh": ("sinh", {}), "cosh": ("cosh", {}), "asinh": ("asinh", {}), "erf": ("erf", {}),
    "clamp": ("clamp", {"min": -1.0, "max": 1.0}), "clamp-min": ("clamp", {"min": 0.0}),
    "clamp_min": ("clamp_min", {"min": 0.5}), "clamp_max": ("clamp_max", {"max": -0.5}),
    "hardtanh": ("hardtanh", {}), "hardtanh-bounds": ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    "relu6": ("relu6", {}), "sign": ("sign", {}), "log1p": ("log1p", {}), "expm1": ("expm1", {}),
    "exp2": ("exp2", {}),
}
KINKS = {"clamp": (-1.0, 1.0), "clamp-min": (0.0,), "clamp_min": (0.5,), "clamp_max": (-0.5,),  # at the bounds
         "hardtanh-bounds": (-0.5, 2.0)}
# torch's float64 hardsigmoid backward multiplies by a float32 1/6 (0.16666667163): 3e-8 from the exact 1/6, ours
LOOSER = {"hardsigmoid": 1e-7}
BINARY = {"maximum": "maximum", "minimum": "minimum", "xlogy": "xlogy"}
# SymPy's Max and Min, as expressions write them: at a tie, the derivative of the torch function of their shape
EXPRESSIONS = {"Max": ("Max(z, z/10)", lambda z: torch.nn.functional.leaky_relu(z, 0.1), (0.0,)),
               "Min": ("Min(Max(z, -1), 1)", torch.nn.functional.hardtanh, (-1.0, 1.0))}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", POINTWISE)
def test_elementwise_op_value_and_derivative_are_torchs(row, dtype):
    name, options = POINTWISE[row]
    op, dtype = lookup(name), DTYPES[dtype]
    values = points(op, options, dtype, KINKS.get(row))
    width = len(values)
    model = S.Model(Unary(width, symprop_call(op, options)), S.ElementwiseLoss("y", reduction="sum"), inputs=width,
                    name=f"op_{row.replace('-', '_')}")
    built = modules(model)
    a = torch.tensor(values, dtype=torch.float64)
    want = {}
    for precision in (dtype, torch.float64):
        leaf = a.to(precision).clone().requires_grad_(True)
        y = torch_call(op, options)(leaf)
        y.sum().backward()
        want[precision] = (y.detach(), leaf.grad)
    x, t = torch.zeros(1, width, dtype=dtype), torch.zeros(1, width, dtype=dtype)
    for backend, module in built.items():
        y, _, grads = run(module, backend, {"a": a.to(dtype)}, {"x": x}, t)
        close(y, want[dtype][0], want[torch.float64][0], dtype, f"{row} value ({backend})")
        close(grads["a"], want[dtype][1], want[torch.float64][1], dtype, f"{row} derivative ({backend})",
              LOOSER.get(row, 0.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", EXPRESSIONS)
def test_max_and_min_in_expressions_are_torchs(row, dtype):
    expr, function, kinks = EXPRESSIONS[row]
    dtype = DTYPES[dtype]
    values = points(lookup(row), {}, dtype, kinks)
    width = len(values)
    model = S.Model(S.Sequential(S.Linear(width, width, bias=False), S.Elementwise(expr)),
                    S.ElementwiseLoss("y", reduction="sum"), inputs=width, name=f"op_{row}")
    built = modules(model)
    a = torch.tensor(values, dtype=torch.float64)
    want = {}
    for precision in (dtype, torch.float64):
        leaf = a.to(precision).clone().requires_grad_(True)
        y = function(leaf)
        y.sum().backward()
        want[precision] = (y.detach(), leaf.grad)
    # y = f(x @ W.T) with W = diag(a) and x = 1: entry k is f(a_k), and dL/dW_kk is f′(a_k)
    params = {"0.weight": torch.diag(a).to(dtype)}
    x, t = torch.ones(1, width, dtype=dtype), torch.zeros(1, width, dtype=dtype)
    for backend, module in built.items():
        y, _, grads = run(module, backend, params, {"x": x}, t)
        close(y, want[dtype][0], want[torch.float64][0], dtype, f"{row} value ({backend})")
        close(torch.diagonal(grads["0.weight"]), want[dtype][1], want[torch.float64][1], dtype,
              f"{row} derivative ({backend})")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", BINARY)
def test_binary_op_values_and_derivatives_are_torchs(row, dtype):
    """At random pairs, at ties (torch splits a tie's gradient in halves) and far out; xlogy at 0."""
    op, dtype = lookup(BINARY[row]), DTYPES[dtype]
    far = FAR[dtype]
    a = [0.5, -1.2, 2.0, 0.0, far, -far, 1.5, 3.0]
    b = [0.5, 0.7, -2.0, 0.0, -far, far, 1.5, 1e-3]
    if row == "xlogy":
        a, b = [abs(v) for v in a], [abs(v) + 1e-3 for v in b]
        a[3], b[3] = 0.0, 2.0  # 0·log 2: torch's derivative in a is 0 there
    width = len(a)
    model = S.Model(Binary(width, op.public), S.ElementwiseLoss("y", reduction="sum"), inputs=width, name=f"op_{row}")
    built = modules(model)
    want = {}
    for precision in (dtype, torch.float64):
        leaves = [torch.tensor(v, dtype=precision, requires_grad=True) for v in (a, b)]
        y = torch_call(op, {})(*leaves)
        y.sum().backward()
        want[precision] = (y.detach(), leaves[0].grad, leaves[1].grad)
    params = {"a": torch.tensor(a, dtype=dtype), "b": torch.tensor(b, dtype=dtype)}
    x, t = torch.zeros(1, width, dtype=dtype), torch.zeros(1, width, dtype=dtype)
    for backend, module in built.items():
        y, _, grads = run(module, backend, params, {"x": x}, t)
        close(y, want[dtype][0], want[torch.float64][0], dtype, f"{row} value ({backend})")
        for k, key in enumerate("ab"):
            close(grads[key], want[dtype][k + 1], want[torch.float64][k + 1], dtype, f"{row} d/d{key} ({backend})")


# -- layers, losses and composites ---------------------------------------------------------------------------------
class Decoding(S.Module):
    """A decoder layer reading a memory made from a second input."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.head = layer, S.Linear(4, 2)

    def forward(self, x, memory):
        return self.head(self.layer(x, memory).mean(1))


class Transforming(S.Module):
    def __init__(self):
        super().__init__()
        self.model, self.head = S.Transformer(4, 2, 1, 1, 8), S.Linear(4, 2)

    def forward(self, src, tgt):
        return self.head(self.model(src, tgt).mean(1))


def _sequence(*layers):
    return S.Sequential(*layers)


def _encoder():
    return S.TransformerEncoderLayer(4, 2, 8, activation="gelu")


class Through(S.Module):
    """x through a linear layer, `body`, and a linear head: how a primitive sits in a model as torch code writes it."""

    def __init__(self, body, width: int = 4):
        super().__init__()
        self.fc, self.head, self.body = S.Linear(3, 4), S.Linear(width, 2), body

    def forward(self, x):
        return self.head(self.body(self.fc(x)))


class Padded(S.Module):
    """An encoder layer whose keys at the end of each row are padding (a boolean input)."""

    def __init__(self):
        super().__init__()
        self.layer, self.head = _encoder(), S.Linear(4, 2)

    def forward(self, x, pad):
        return self.head(self.layer(x, src_key_padding_mask=pad).mean(1))


class Masked(S.Module):
    """Scores with a causal mask made in forward from sizes, as attention code writes it (masked_fill)."""

    def __init__(self, sdpa: bool = False):
        super().__init__()
        self.q, self.k, self.v, self.head = S.Linear(4, 4), S.Linear(4, 4), S.Linear(4, 4), S.Linear(12, 2)
        self.sdpa = sdpa

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.sdpa:
            return self.head(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).flatten(1))
        above = torch.ones(3, 3, dtype=torch.bool).triu(1)
        scores = (q @ k.transpose(-2, -1)).masked_fill(above, float("-inf"))
        return self.head((scores.softmax(-1) @ v).flatten(1))


class WeightOnlyNorm(S.Module):
    """A layer norm with a weight and no bias, as nanoGPT's LayerNorm(bias=False) calls F.layer_norm."""

    def __init__(self):
        super().__init__()
        self.fc, self.weight = S.Linear(3, 4), S.Parameter((4,), init="ones")

    def forward(self, x):
        return SF.layer_norm(self.fc(x), self.weight.shape, self.weight, None, 1e-5)


class Imaged(S.Module):
    """Images (batch, 2, 6, 6), or sequences (batch, 2, 7), through a 1x1 convolution, `body`, and a linear head on its
    flattened output: how a convolution or a pooling sits in a CNN."""

    def __init__(self, body, width: int, dims: int = 2):
        super().__init__()
        self.mix, self.body, self.head = (S.Conv2d if dims == 2 else S.Conv1d)(2, 3, 1), body, S.Linear(width, 2)

    def forward(self, x):
        return self.head(self.body(self.mix(x)).flatten(1))


def _imaged(body, width: int, dims: int = 2):
    return lambda: S.Model(Imaged(body, width, dims), S.MSELoss(), inputs={"x": (2, 6, 6) if dims == 2 else (2, 7)})


def _through(body, width: int = 4):
    return lambda: S.Model(Through(body, width), S.MSELoss(), inputs=3)


def _picked():
    """makemore's bigram loss, -probs[torch.arange(n), ys].log().mean(), read by from_torch."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softmax(dim=-1)).double()
    return S.from_torch(net, lambda p, t: -p[torch.arange(t.shape[0]), t].log().mean(),
                        example_inputs=(torch.randn(2, 3, dtype=torch.float64),), example_target=torch.tensor([1, 3]))


class QValues(torch.nn.Module):
    """A DQN's Q(s, a): the value of each state's action, q.gather(1, actions.unsqueeze(1)), the actions an input."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)

    def forward(self, obs, action):
        return torch.tanh(self.fc(obs)).gather(1, action.unsqueeze(1))


def _gathered():
    return S.from_torch(QValues().double(), torch.nn.MSELoss(),
                        example_inputs=(torch.randn(3, 3, dtype=torch.float64), torch.tensor([0, 3, 1])),
                        example_target=torch.randn(3, 1, dtype=torch.float64))


MODELS = {  # row -> (op, a function that makes the model)
    # the primitives, each through the torch names that make it (and its adjoint's row: pad is a slice's, a
    # scatter-add an embedding's)
    "einsum": ("einsum", _through(lambda h: torch.einsum("ni,ij->nj", h, torch.einsum("ni,nj->ij", h, h)) / 8)),
    "einsum-matmul": ("einsum", _through(lambda h: torch.bmm(h.reshape(-1, 2, 2), h.reshape(-1, 2, 2).mT).flatten(1))),
    "sum": ("sum", _through(lambda h: h * h.sum(-1, keepdim=True) + h.mean(0))),
    "max": ("max", _through(lambda h: h - h.amax(-1, keepdim=True) + torch.amax(h * h, 1).unsqueeze(1))),
    "compare": ("compare", _through(lambda h: h * torch.gt(h, 0.1) + torch.le(h, -0.2) * 0.5 +
                                    torch.logical_not(torch.eq(h, 0)) * h)),
    "where": ("where", _through(lambda h: torch.where(torch.gt(h, 0), h, 0.1 * h) +
                                torch.where(torch.lt(h, 1), 0.0, h))),
    "minus_infinity": ("minus_infinity", _through(lambda h: torch.softmax(
        h.masked_fill(torch.lt(h, h.amax(-1, keepdim=True) - 1), float("-inf")), -1))),
    "vector_norm": ("vector_norm", _through(lambda h: h / (torch.linalg.vector_norm(h, dim=-1, keepdim=True) + 1) +
                                            torch.norm(h, dim=1, keepdim=True))),
    "logsumexp": ("logsumexp", _through(lambda h: h - torch.logsumexp(h, dim=-1, keepdim=True) +
                                        h.logsumexp(-1, keepdim=True) * 0.5)),
    "take_rows": ("take_rows", _picked),
    "take_rows-gather": ("take_rows", _gathered),
    "detach": ("detach", _through(lambda h: h * h.detach() + torch.detach(h) ** 2)),
    "var": ("var", _through(lambda h: h * h.var(-1, keepdim=True) + torch.var(h, 1, unbiased=False, keepdim=True))),
    "std": ("std", _through(lambda h: h / h.std(-1, keepdim=True) + torch.std(h, dim=1, correction=0, keepdim=True))),
    "slice": ("slice", _through(lambda h: h[:, 1:3], width=2)),
    "slice-step": ("slice", _through(lambda h: h[:, ::2] * h[:, 1::3].sum(1, keepdim=True), width=2)),
    "flip": ("flip", _through(lambda h: torch.flip(h, dims=[1]) * h + h.flip(0))),
    "diagonal": ("diagonal", _through(lambda h: torch.diagonal(h.view(-1, 2, 2), dim1=-2, dim2=-1) *
                                      h[:, :2], width=2)),
    "pad": ("pad", _through(lambda h: h[..., :2] * h[:, 2:], width=2)),
    "pad-F.pad": ("pad", _through(lambda h: torch.nn.functional.pad(h, (1, 2)), width=7)),
    "concat": ("concat", _through(lambda h: torch.cat([h, h * h[:, :1]], dim=1), width=8)),
    "rearrange": ("rearrange", _through(lambda h: h.view(-1, 2, 2).transpose(1, 2).permute(0, 2, 1).flatten(1))),
    "map": ("map", lambda: S.Model(_sequence(S.Linear(3, 4), S.LayerNorm(4)), S.MSELoss(), inputs=3)),
    "gather": ("gather", lambda: S.Model(_sequence(S.Embedding(5, 3), S.MeanPool(), S.Linear(3, 2)), S.MSELoss(),
                                         inputs={"x": (4,)})),
    "scatter_add": ("scatter_add", lambda: S.Model(_sequence(S.Embedding(5, 3), S.Linear(3, 2)), S.MSELoss(),
                                                   inputs={"x": (4,)})),
    "onehot": ("onehot", lambda: S.Model(_sequence(S.Linear(3, 4)), S.CrossEntropyLoss(), inputs=3)),
    "causal_mask": ("causal_mask", lambda: S.Model(_sequence(S.TransformerEncoderLayer(4, 2, 8, causal=True),
                                                             S.MeanPool(), S.Linear(4, 2)), S.MSELoss(),
                                                   inputs={"x": (3, 4)})),
    "sinusoid": ("sinusoid", lambda: S.Model(_sequence(S.PositionalEncoding(5, 4, learned=False), S.Linear(4, 2)),
                                             S.MSELoss(), inputs={"x": (5, 4)})),
    "constant": ("constant", _through(lambda h: (h - torch.tensor([0.5, -1.0, 0.25, 2.0])) /
                                      torch.tensor([3.0, 0.5, 1.5, 4.0]))),
    "padding_mask": ("padding_mask", lambda: S.Model(Padded(), S.MSELoss(), inputs={"x": (3, 4), "pad": (3,)})),
    "masked_fill": ("masked_fill", lambda: S.Model(Masked(), S.MSELoss(), inputs={"x": (3, 4)})),
    "masked_fill-held": ("masked_fill", _through(lambda h: h.masked_fill(torch.tensor([False, True, False, True]), 0.25)
                                                  .masked_fill(torch.tensor([True, False, False, False]),
                                                               float("-inf")).softmax(-1))),
    "scaled_dot_product_attention": ("scaled_dot_product_attention",
                                     lambda: S.Model(Masked(sdpa=True), S.MSELoss(), inputs={"x": (3, 4)})),
    "linear": ("linear", lambda: S.Model(_sequence(S.Linear(3, 4)), S.MSELoss(), inputs=3)),
    # convolutions and poolings: windows are their primitive, fold its adjoint, argmax max pooling's routing
    "windows": ("windows", _imaged(S.Conv2d(3, 2, 3), 32)),
    "fold": ("fold", _imaged(S.Conv2d(3, 2, 3, stride=2, padding=1), 18)),
    "argmax": ("argmax", _imaged(S.MaxPool2d(2), 27)),
    "conv2d": ("conv2d", _imaged(S.Conv2d(3, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=3),
                                 72)),
    "conv2d-same": ("conv2d", _imaged(S.Conv2d(3, 2, (3, 2), padding="same", bias=False), 72)),
    "conv1d": ("conv1d", _imaged(S.Conv1d(3, 4, 3, padding=2, dilation=2), 28, dims=1)),
    "max_pool2d": ("max_pool2d", _imaged(S.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), 48)),
    "max_pool2d-of-a-sum": ("max_pool2d", _imaged(lambda h: SF.max_pool2d(h + 0.5, 2), 27)),
    "max_pool1d": ("max_pool1d", _imaged(lambda h: SF.max_pool1d(h, 2, 2, 1), 12, dims=1)),
    "avg_pool2d": ("avg_pool2d", _imaged(S.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), 27)),
    "avg_pool1d": ("avg_pool1d", _imaged(lambda h: SF.avg_pool1d(h, 3, 2, 1), 12, dims=1)),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d", _imaged(S.AdaptiveAvgPool2d((1, 3)), 9)),
    "adaptive_avg_pool1d": ("adaptive_avg_pool1d", _imaged(S.AdaptiveAvgPool1d(1), 3, dims=1)),
    "adaptive_max_pool2d": ("adaptive_max_pool2d", _imaged(S.AdaptiveMaxPool2d(2), 12)),
    "adaptive_max_pool1d": ("adaptive_max_pool1d", _imaged(lambda h: SF.adaptive_max_pool1d(h, 7), 21, dims=1)),
    "batch_norm": ("batch_norm", _imaged(lambda h: SF.batch_norm(h, None, None, training=True, eps=1e-3), 108)),
    "batch_norm2d": ("batch_norm2d", _imaged(S.BatchNorm2d(3), 108)),
    "batch_norm2d-eval": ("batch_norm2d", _imaged(S.BatchNorm2d(3, affine=False).eval(), 108)),
    "batch_norm1d": ("batch_norm1d", _imaged(S.BatchNorm1d(3), 21, dims=1)),
    "group_norm": ("group_norm", _imaged(S.GroupNorm(3, 3), 108)),
    "group_norm-1d": ("group_norm", _imaged(lambda h: SF.group_norm(h, 1), 21, dims=1)),
    "layer_norm": ("layer_norm", lambda: S.Model(_sequence(S.Linear(3, 4), S.LayerNorm(4)), S.MSELoss(), inputs=3)),
    "layer_norm-weight_only": ("layer_norm", lambda: S.Model(WeightOnlyNorm(), S.MSELoss(), inputs=3)),
    "embedding": ("embedding", lambda: S.Model(_sequence(S.Embedding(5, 3), S.MeanPool(), S.Linear(3, 2)),
                                               S.MSELoss(), inputs={"x": (4,)})),
    "embedding-padding_idx": ("embedding", lambda: S.Model(_sequence(S.Embedding(5, 3, padding_idx=1), S.MeanPool(),
                                                                     S.Linear(3, 2)), S.MSELoss(), inputs={"x": (4,)})),
    "softmax": ("softmax", lambda: S.Model(_sequence(S.Linear(3, 4), S.Softmax()), S.MSELoss(), inputs=3)),
    "log_softmax": ("log_softmax", lambda: S.Model(_sequence(S.Linear(3, 4), S.LogSoftmax()), S.MSELoss(), inputs=3)),
    "dropout": ("dropout", lambda: S.Model(_sequence(S.Linear(3, 4), S.Dropout()), S.MSELoss(), inputs=3)),
    "elementwise": ("elementwise", lambda: S.Model(_sequence(S.Linear(3, 4), S.Elementwise("z*tanh(softplus(z))")),
                                                   S.MSELoss(), inputs=3)),
    "mean_pool": ("mean_pool", lambda: S.Model(_sequence(S.Linear(3, 4), S.MeanPool()), S.MSELoss(), inputs=3,
                                               sequence=5)),
    "positions": ("positions", lambda: S.Model(_sequence(S.PositionalEncoding(5, 3), S.Linear(3, 2)), S.MSELoss(),
                                               inputs=3, sequence=5)),
    "positions-sinusoid": ("positions", lambda: S.Model(_sequence(S.PositionalEncoding(5, 4, learned=False),
                                                                  S.Linear(4, 2)), S.MSELoss(), inputs=4, sequence=5)),
    "transformer_encoder": ("transformer_encoder", lambda: S.Model(
        _sequence(_encoder(), S.MeanPool(), S.Linear(4, 2)), S.MSELoss(), inputs=4, sequence=3)),
    "transformer_encoder-causal": ("transformer_encoder", lambda: S.Model(
        _sequence(S.TransformerEncoderLayer(4, 2, 8, norm_first=True, causal=True), S.MeanPool(), S.Linear(4, 2)),
        S.MSELoss(), inputs=4, sequence=3)),
    "transformer_decoder": ("transformer_decoder", lambda: S.Model(
        Decoding(S.TransformerDecoderLayer(4, 2, 8)), S.MSELoss(), inputs={"x": 4, "memory": 4}, sequence=3)),
    "transformer_encoder_stack": ("transformer_encoder_stack", lambda: S.Model(
        _sequence(S.TransformerEncoder(_encoder(), 2, S.LayerNorm(4)), S.MeanPool(), S.Linear(4, 2)), S.MSELoss(),
        inputs=4, sequence=3)),
    "transformer_decoder_stack": ("transformer_decoder_stack", lambda: S.Model(
        Decoding(S.TransformerDecoder(S.TransformerDecoderLayer(4, 2, 8), 2)), S.MSELoss(),
        inputs={"x": 4, "memory": 4}, sequence=3)),
    "transformer": ("transformer", lambda: S.Model(Transforming(), S.MSELoss(), inputs={"src": 4, "tgt": 4},
                                                   sequence=3)),
    "mse_loss": ("mse_loss", lambda: S.Model(_sequence(S.Linear(3, 2)), S.MSELoss(reduction="sum"), inputs=3)),
    "l1_loss": ("l1_loss", lambda: S.Model(_sequence(S.Linear(3, 2)), S.L1Loss(), inputs=3)),
    "smooth_l1_loss": ("smooth_l1_loss", lambda: S.Model(_sequence(S.Linear(3, 2)), S.SmoothL1Loss(beta=0.5),
                                                         inputs=3)),
    "huber_loss": ("huber_loss", lambda: S.Model(_sequence(S.Linear(3, 2)), S.HuberLoss(reduction="sum", delta=0.7),
                                                 inputs=3)),
    "binary_cross_entropy": ("binary_cross_entropy", lambda: S.Model(_sequence(S.Linear(3, 2), S.Sigmoid()),
                                                                     S.BCELoss(), inputs=3)),
    "binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits", lambda: S.Model(
        _sequence(S.Linear(3, 2)), S.BCEWithLogitsLoss(), inputs=3)),
    "cross_entropy": ("cross_entropy", lambda: S.Model(_sequence(S.Linear(3, 4)), S.CrossEntropyLoss(), inputs=3)),
    "cross_entropy-probs": ("cross_entropy", lambda: S.Model(_sequence(S.Linear(3, 4)),
                                                             S.CrossEntropyLoss(target="probs"), inputs=3)),
    "cross_entropy-ignore": ("cross_entropy", lambda: S.Model(_sequence(S.Linear(3, 4)),
                                                              S.CrossEntropyLoss(ignore_index=1), inputs=3)),
    "nll_loss": ("nll_loss", lambda: S.Model(_sequence(S.Linear(3, 4), S.LogSoftmax()), S.NLLLoss(), inputs=3)),
    "kl_div": ("kl_div", lambda: S.Model(_sequence(S.Linear(3, 4), S.LogSoftmax()), S.KLDivLoss("batchmean"),
                                         inputs=3)),
    "elementwise_loss": ("elementwise_loss", lambda: S.Model(_sequence(S.Linear(3, 2)),
                                                             S.ElementwiseLoss("(y - t)**2*softplus(y)"), inputs=3)),
}


# torch's BCELoss backward divides by max(y(1 − y), 1e-12): past logits of about ±28 (a sigmoid's output within 1e-12
# of 0 or 1) its gradient is shrunk; symprop's is the exact derivative there (the README's "Numerical behaviour").
EXACT_WHERE_TORCH_IS_NOT = {("binary_cross_entropy", "far")}


def case(model, regime: str, dtype, seed: int = 0):
    """(params, inputs, t) as float64 (int64) tensors: drawn at random; far out (every float input scaled to ±FAR,
    so that logits and pre-activations reach where exp overflows); or at kinks (every parameter 0, so that each
    pre-activation sits at 0, with exact ties in every max; probability targets with zeros; ignored classes)."""
    generator = torch.Generator().manual_seed(seed)
    params = {key: torch.randn(shape, generator=generator, dtype=torch.float64) * 0.5
              for key, shape in model.parameters.items()}
    inputs, t = random_batch(model, 3, generator)
    if regime == "far":
        inputs = {k: v * FAR[dtype] if v.is_floating_point() else v for k, v in inputs.items()}
        if model.target_kind != "index" and getattr(model.loss, "target_domain", "real") == "real":
            t = t * FAR[dtype]
    if regime == "kinks":
        params = {key: torch.zeros_like(value) for key, value in params.items()}
        domain = getattr(model.loss, "target_domain", "real")
        if t.is_floating_point() and domain != "real":  # 0·log 0 for kl_div; BCE's 0 and 1 targets
            t = torch.where(t < t.mean(), torch.zeros_like(t), t if domain == "simplex" else torch.ones_like(t))
            if domain == "simplex":  # still a distribution: symprop relies on Σ_k t_k = 1, as the README says
                t = t / t.sum(-1, keepdim=True)
        if not t.is_floating_point():
            t[0] = getattr(model.loss, "ignore_index", -100) if getattr(model.loss, "ignore_index", -100) >= 0 \
                else t[0]
    return params, inputs, t


@pytest.mark.parametrize("regime", ["random", "far", "kinks"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", MODELS)
def test_layer_and_loss_values_and_derivatives_are_torchs(row, dtype, regime):
    dtype = DTYPES[dtype]
    model = MODELS[row][1]()
    model.name = f"op_{row.replace('-', '_')}"
    built = modules(model)
    params, inputs, t = case(model, regime, dtype)

    def cast(values: dict, precision):
        return {k: v.to(precision) if v.is_floating_point() else v for k, v in values.items()}

    want = {}
    for precision in (dtype, torch.float64):
        loss, grads = reference(model, cast(params, precision), cast(inputs, precision),
                                t.to(precision) if t.is_floating_point() else t)
        want[precision] = (loss, grads)
    # A gradient that underflows (a saturated softmax's, ~e^-1000) is rounding noise in both computations: noise of
    # the order of eps·|L|·|x|, below which two computations need not agree.
    largest = max([1.0] + [v.abs().max().item() for v in inputs.values() if v.is_floating_point()])
    floor = 8 * torch.finfo(dtype).eps * max(abs(want[torch.float64][0].item()), 1.0) * largest
    for backend, module in built.items():
        _, loss, grads = run(module, backend, cast(params, dtype), cast(inputs, dtype),
                             t.to(dtype) if t.is_floating_point() else t)
        close(loss, want[dtype][0], want[torch.float64][0], dtype, f"{row} {regime} loss ({backend})")
        if (row, regime) in EXACT_WHERE_TORCH_IS_NOT:
            continue
        for key in params:
            close(grads[key], want[dtype][1][key], want[torch.float64][1][key], dtype,
                  f"{row} {regime} d/d{key} ({backend})", floor=floor)


def test_each_primitive_row_makes_its_op():
    """A primitive's row checks that op: its model's graph (derived: adjoints are made by the derivation) has it."""
    for row, (name, make) in MODELS.items():
        if type(OPS[name]).__name__ == "Primitive":
            graph = S.derive_network(make()).lowered.graph
            assert name in {t.op for t in graph.tensors.values()}, row


def test_every_op_has_a_row():
    """A new op comes with its row: every registered op is checked above."""
    rows = {name for name, _ in POINTWISE.values()} | set(BINARY.values()) | set(EXPRESSIONS) | \
        {op for op, _ in MODELS.values()}
    assert set(OPS) - rows == set(), "ops without a row in tests/test_ops.py"
    assert rows - set(OPS) == set(), "rows of ops that are not registered"


def test_every_op_is_timed_by_the_per_op_benchmark():
    """benchmarks/ops.py times every registered op: in a row of its own, or inside the row that makes it."""
    benchmarks = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        spec = importlib.util.spec_from_file_location("per_op_benchmark", Path(benchmarks) / "ops.py")
        bench = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = bench  # as import does: its dataclass looks the module up
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(benchmarks)
    rows = bench._rows()
    named = {op for row in rows.values() for op in row.ops}
    assert named - set(OPS) == set(), "benchmark rows naming ops that are not registered"
    assert set(bench.covered(rows)) == set(OPS)
    assert {row for row, _ in bench.COVERED_BY.values()} <= set(rows)


def test_every_primitive_has_a_jvp_rule():
    """Second order runs forward mode over the gradient program: every primitive says how its result moves."""
    missing = [op.name for op in OPS.values() if type(op).__name__ == "Primitive" and op.jvp is type(op).jvp]
    assert missing == [], f"primitives without a jvp rule: {missing}"


_HVP_MODULES: dict = {}  # row -> (model, its modules with hvp)


@pytest.mark.parametrize("regime", ["random", "kinks"])
@pytest.mark.parametrize("row", MODELS)
def test_layer_and_loss_hvp_is_torchs(row, regime):
    """Each row's Hessian-vector product (forward mode, every op's jvp, over the gradient program, every op's vjp)
    against torch's double backward, float64, at random points and at kinks (each pre-activation at 0, every max
    tied), through both generated modules."""
    from symprop.check import reference_hvp

    if row not in _HVP_MODULES:  # derived once for both regimes
        model = MODELS[row][1]()
        model.name = f"op_{row.replace('-', '_')}"
        _HVP_MODULES[row] = model, modules(model, hvp=True)
    model, built = _HVP_MODULES[row]
    params, inputs, t = case(model, regime, torch.float64, seed=1)
    generator = torch.Generator().manual_seed(2)
    v = {key: torch.randn(p.shape, generator=generator, dtype=torch.float64) for key, p in params.items()}
    want = reference_hvp(model, params, inputs, t, v)
    # A parameter that moves nothing (a bias before a normalization, a key's bias before a softmax) has a Hessian row
    # of 0, which both compute as rounding noise: noise of the order of eps times the product's largest entry.
    floor = 64 * torch.finfo(torch.float64).eps * max(w.abs().max().item() for w in want.values())
    for backend, module in built.items():
        if backend == "numpy":
            _, got = module["hvp"]({k: p.numpy() for k, p in params.items()}, *(x.numpy() for x in inputs.values()),
                                   t.numpy(), {k: d.numpy() for k, d in v.items()})
        else:
            _, got = module["hvp"](params, *inputs.values(), t, v)
        for key in params:
            close(torch.as_tensor(np.asarray(got[key])), want[key], want[key], torch.float64,
                  f"{row} hvp {key} ({backend})", floor=floor)


@pytest.mark.parametrize("scipy", [True, False])
def test_numpy_erf_is_exact_with_scipy_and_without(scipy, monkeypatch):
    """Generated NumPy code's erf: in float32 Abramowitz and Stegun's 7.1.26; in float64 SciPy's where it is
    installed, else Cody's rational approximations; ERF names them. Within 1e-15 relative of math.erf in float64
    (over ±30, and 0, ±inf, nan), and within 1e-6 in float32."""
    import builtins
    import math

    from symprop.ops.erf import NUMPY

    if scipy:
        pytest.importorskip("scipy.special")
    else:
        real = builtins.__import__

        def without_scipy(name, *args, **kwargs):
            if name.split(".")[0] == "scipy":
                raise ImportError(name)
            return real(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", without_scipy)
    namespace = {"np": np}
    exec(NUMPY.source, namespace)  # noqa: S102
    assert "7.1.26 in float32" in namespace["ERF"] and "scipy.special.erf" in namespace["ERF"]
    x = np.concatenate([np.linspace(-30, 30, 60001), [0.46875, -4.0, 4.0, 27.0]])
    exact = np.array([math.erf(v) for v in x])
    computed = namespace["erf"](x)
    monkeypatch.undo()
    assert np.array_equal(computed, namespace["erf_cody"](x)) != scipy  # which one ran
    assert np.max(np.abs(computed - exact) / np.maximum(np.abs(exact), 1e-300)) <= 1e-15
    assert np.max(np.abs(namespace["erf"](x.astype(np.float32)) - exact)) <= 1e-6
    special = namespace["erf"](np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))
    assert list(special[:4]) == [0.0, -0.0, 1.0, -1.0] and np.signbit(special[1]) and np.isnan(special[4])


@pytest.mark.parametrize("row", ["smooth_l1_loss", "huber_loss"])
def test_huber_and_smooth_l1_derivatives_print_as_one_clamp(row):
    """Their δ, u where |u| < c and else c·sign(u) (times a scale), is printed as clamp(u, −c, c): one pass, where
    the pieces take a comparison, a sign, two products and a select (the rows' values are checked above)."""
    model = MODELS[row][1]()
    model.name = f"op_{row}"
    derivation = Derivation(model)
    assert "np.clip(" in derivation.render("numpy") and "torch.clamp(" in derivation.render("torch")
