"""Generated NumPy and PyTorch modules against torch.autograd.

The reference is built here, by torch alone: an nn.Sequential of real torch.nn modules,
torch's loss class (or a hand-written torch function for custom expressions), the same
parameters loaded with load_state_dict, and loss.backward().
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import symprop as sy

TOLERANCE = 1e-10  # float64
TOLERANCE_32 = 1e-5  # float32, against torch in float32

# Custom expressions, written by hand in torch so that autograd, not symprop, differentiates them.
ACTIVATIONS = {
    "z*sigmoid(z)": lambda z: z * torch.sigmoid(z),
    "log(1+exp(z))": lambda z: torch.log(1 + torch.exp(z)),
    "z**3/3 - z": lambda z: z**3 / 3 - z,
}
ELEMENTWISE_LOSSES = {
    "log(cosh(y - t))": lambda y, t: torch.log(torch.cosh(y - t)),
    "(y - t)**4": lambda y, t: (y - t) ** 4,
}


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z):
        return self.fn(z)


@dataclass
class Case:
    id: str
    layers: list
    loss: object
    target: str  # index | onehot | probs | probs_zeros | unit | real
    activations: dict | None = None  # Elementwise layer index -> its expression text
    loss_text: str = ""  # ElementwiseLoss: its expression text

    @property
    def model(self):
        return sy.Model(sy.Sequential(*self.layers), self.loss, name="m_" + self.id.replace("-", "_"))


def torch_network(case: Case, dtype) -> nn.Sequential:
    modules = []
    for i, layer in enumerate(case.layers):
        if isinstance(layer, sy.Linear):
            modules.append(nn.Linear(layer.in_features, layer.out_features, bias=layer.bias))
        elif isinstance(layer, sy.Elementwise):
            modules.append(Lambda(ACTIVATIONS[case.activations[i]]))
        elif isinstance(layer, sy.LogSoftmax):
            modules.append(nn.LogSoftmax(dim=-1))
        elif isinstance(layer, sy.Softmax):
            modules.append(nn.Softmax(dim=-1))
        else:
            modules.append({sy.Sigmoid: nn.Sigmoid, sy.Tanh: nn.Tanh, sy.ReLU: nn.ReLU,
                            sy.Identity: nn.Identity}[type(layer)]())
    return nn.Sequential(*modules).to(dtype)


def torch_loss(case: Case):
    loss = case.loss
    if isinstance(loss, sy.ElementwiseLoss):
        each = ELEMENTWISE_LOSSES[case.loss_text]
        reduce = {"mean": torch.mean, "sum": torch.sum}[loss.reduction]
        return lambda y, t: reduce(each(y, t))
    cls = {sy.MSELoss: nn.MSELoss, sy.BCELoss: nn.BCELoss, sy.BCEWithLogitsLoss: nn.BCEWithLogitsLoss,
           sy.CrossEntropyLoss: nn.CrossEntropyLoss, sy.NLLLoss: nn.NLLLoss, sy.KLDivLoss: nn.KLDivLoss}
    return cls[type(loss)](reduction=loss.reduction)


# -- the cases -------------------------------------------------------------------
def _layer_cases():
    """Every layer type between two Linear layers, with MSE."""
    cases = []
    for name, layer in [("sigmoid", sy.Sigmoid()), ("tanh", sy.Tanh()), ("relu", sy.ReLU()),
                        ("softmax", sy.Softmax()), ("log_softmax", sy.LogSoftmax()),
                        ("identity", sy.Identity())]:
        cases.append(Case(f"layer-{name}", [sy.Linear(5, 4), layer, sy.Linear(4, 3)], sy.MSELoss(), "real"))
    for j, text in enumerate(ACTIVATIONS):
        cases.append(Case(f"layer-elementwise{j}", [sy.Linear(5, 4), sy.Elementwise(text), sy.Linear(4, 3)],
                          sy.MSELoss(), "real", activations={1: text}))
    cases.append(Case("layer-linear-nobias", [sy.Linear(5, 4, bias=False), sy.Tanh(), sy.Linear(4, 3, bias=False)],
                      sy.MSELoss(), "real"))
    cases.append(Case("layer-output-tanh", [sy.Linear(5, 3), sy.Tanh()], sy.MSELoss(), "real"))
    cases.append(Case("layer-output-relu", [sy.Linear(5, 4), sy.ReLU(), sy.Linear(4, 3), sy.ReLU()],
                      sy.MSELoss(), "real"))
    return cases


def _loss_cases():
    cases = []
    for r in ("mean", "sum"):
        cases += [
            Case(f"mse-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 3)], sy.MSELoss(r), "real"),
            Case(f"bce-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 2), sy.Sigmoid()], sy.BCELoss(r), "unit"),
            Case(f"bce_with_logits-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 2)],
                 sy.BCEWithLogitsLoss(r), "unit"),
            Case(f"cross_entropy_index-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 3)],
                 sy.CrossEntropyLoss(r, target="index"), "index"),
            Case(f"cross_entropy_probs-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 3)],
                 sy.CrossEntropyLoss(r, target="probs"), "probs"),
            Case(f"nll-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 3), sy.LogSoftmax()], sy.NLLLoss(r), "index"),
        ]
        for j, text in enumerate(ELEMENTWISE_LOSSES):
            cases.append(Case(f"elementwise_loss{j}-{r}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 2)],
                              sy.ElementwiseLoss(text, r), "real", loss_text=text))
    for r in ("sum", "mean", "batchmean"):
        for target in ("probs", "probs_zeros"):
            cases.append(Case(f"kl_div-{r}-{target}", [sy.Linear(5, 4), sy.Tanh(), sy.Linear(4, 3), sy.LogSoftmax()],
                              sy.KLDivLoss(r), target))
    return cases


def _deep_cases():
    layers = []
    for i in range(10):
        layers.append(sy.Linear(6, 6))
        if i < 9:
            layers.append(sy.Tanh())
    return [Case("mlp-depth10", layers, sy.MSELoss(), "real")]


def _seed_cases():
    return [
        Case("seed-binary_classifier", [sy.Linear(6, 4), sy.Linear(4, 1), sy.Sigmoid()], sy.BCELoss(), "unit"),
        Case("seed-multiclass_index", [sy.Linear(6, 4), sy.Linear(4, 3)], sy.CrossEntropyLoss(), "index"),
        Case("seed-multiclass_onehot", [sy.Linear(6, 4), sy.Linear(4, 3)],
             sy.CrossEntropyLoss(target="probs"), "onehot"),
        Case("seed-regression", [sy.Linear(4, 2), sy.Linear(2, 1)], sy.MSELoss(), "real"),
        Case("seed-backprop_three_layers", [sy.Linear(16, 8), sy.Linear(8, 4), sy.Linear(4, 2)],
             sy.CrossEntropyLoss(), "index"),
        Case("seed-neuron", [sy.Linear(1, 1, bias=False), sy.Sigmoid()], sy.MSELoss(), "real"),
    ]


CASES = _layer_cases() + _loss_cases() + _deep_cases() + _seed_cases()
BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES)


# -- data --------------------------------------------------------------------------
def make_data(case: Case, batch: int, seed: int, dtype=torch.float64):
    """(params, x, t) as torch tensors; params follow nn.Sequential's state_dict."""
    generator = torch.Generator().manual_seed(seed)
    net = torch_network(case, torch.float64)
    params = {k: torch.randn(v.shape, generator=generator, dtype=torch.float64) * 0.7
              for k, v in net.state_dict().items()}
    model = case.model
    x = torch.randn(batch, model.inputs, generator=generator, dtype=torch.float64)
    k = model.outputs

    def softmax_rows():
        return torch.softmax(2 * torch.randn(batch, k, generator=generator, dtype=torch.float64), dim=-1)

    if case.target == "index":
        t = torch.randint(0, k, (batch,), generator=generator)
    elif case.target == "onehot":
        t = nn.functional.one_hot(torch.randint(0, k, (batch,), generator=generator), k).to(torch.float64)
    elif case.target == "probs":
        t = softmax_rows()
    elif case.target == "probs_zeros":  # exact zeros, renormalized; the first row keeps only one class
        t = softmax_rows()
        zero = torch.rand(batch, k, generator=generator) < 0.4
        zero[torch.arange(batch), t.argmax(dim=-1)] = False  # every row keeps some mass
        zero[0, :] = True
        zero[0, k - 1] = False
        t = torch.where(zero, 0.0, t)
        t = t / t.sum(dim=-1, keepdim=True)
        assert (t == 0).any() and not t.isnan().any()
    elif case.target == "unit":
        t = torch.rand(batch, k, generator=generator, dtype=torch.float64)
    else:
        t = torch.randn(batch, k, generator=generator, dtype=torch.float64)
    params = {key: v.to(dtype) for key, v in params.items()}
    x = x.to(dtype)
    if t.is_floating_point():
        t = t.to(dtype)
    return params, x, t


def reference(case: Case, params, x, t):
    """torch.autograd: (loss, {key: grad}, output), computed in params' dtype."""
    net = torch_network(case, x.dtype)
    net.load_state_dict({k: v.clone() for k, v in params.items()})
    output = net(x)
    value = torch_loss(case)(output, t)
    value.backward()
    return value.detach(), {k: p.grad.detach() for k, p in net.named_parameters()}, output.detach()


def relative_error(ours, theirs) -> float:
    ours = torch.as_tensor(np.asarray(ours) if not isinstance(ours, torch.Tensor) else ours).to(torch.float64)
    theirs = theirs.to(torch.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = (ours - theirs).abs().max().item()
    scale = theirs.abs().max().item()
    error = diff / scale if scale > 0 else diff
    return math.inf if math.isnan(error) else error


def numpy_args(params, x, t):
    return {k: v.numpy() for k, v in params.items()}, x.numpy(), t.numpy()


def assert_close(label, ours, theirs, tolerance):
    error = relative_error(ours, theirs)
    assert error <= tolerance, f"{label}: relative error {error:.3g} > {tolerance:g}"


# -- the tests -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("batch", [1, 17])
@pytest.mark.parametrize("case_id", list(BY_ID))
def test_loss_and_gradients_match_autograd(build, case_id, batch, seed):
    case = BY_ID[case_id]
    np_module, torch_module = build(case.model)
    params, x, t = make_data(case, batch, seed)
    want_loss, want_grads, _ = reference(case, params, x, t)
    assert set(want_grads) == set(np_module.PARAM_SHAPES)

    for backend, (loss, grads) in [("numpy", np_module.loss_and_gradients(*numpy_args(params, x, t))),
                                   ("torch", torch_module.loss_and_gradients(params, x, t))]:
        assert set(grads) == set(want_grads), backend
        assert_close(f"{backend} loss", loss, want_loss, TOLERANCE)
        for key, want in want_grads.items():
            assert_close(f"{backend} {key}", grads[key], want, TOLERANCE)


@pytest.mark.parametrize("case_id", list(BY_ID))
def test_api_consistency(build, case_id):
    """forward, loss, gradients and loss_and_gradients agree with each other and with torch."""
    case = BY_ID[case_id]
    np_module, torch_module = build(case.model)
    params, x, t = make_data(case, 9, seed=3)
    _, _, want_output = reference(case, params, x, t)
    shapes = np_module.PARAM_SHAPES
    assert torch_module.PARAM_SHAPES == shapes
    assert list(shapes) == list(torch_network(case, torch.float64).state_dict())  # state_dict order
    assert shapes == {k: tuple(v.shape) for k, v in params.items()}

    # numpy
    np_params, np_x, np_t = numpy_args(params, x, t)
    output = np_module.forward(np_params, np_x)
    assert isinstance(output, np.ndarray)
    assert_close("numpy forward", output, want_output, TOLERANCE)
    loss, grads = np_module.loss_and_gradients(np_params, np_x, np_t)
    assert type(loss) is float
    assert type(np_module.loss(np_params, np_x, np_t)) is float
    assert np_module.loss(np_params, np_x, np_t) == pytest.approx(loss, rel=1e-14, abs=1e-300)
    again = np_module.gradients(np_params, np_x, np_t)
    assert list(again) == list(grads) == list(shapes)
    for key, shape in shapes.items():
        assert isinstance(grads[key], np.ndarray) and grads[key].shape == shape, key
        assert grads[key].dtype == np.float64, key
        np.testing.assert_array_equal(again[key], grads[key])

    # torch
    output = torch_module.forward(params, x)
    assert_close("torch forward", output, want_output, TOLERANCE)
    loss, grads = torch_module.loss_and_gradients(params, x, t)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == torch.float64
    single = torch_module.loss(params, x, t)
    assert isinstance(single, torch.Tensor) and single.dim() == 0
    assert single.item() == pytest.approx(loss.item(), rel=1e-14, abs=1e-300)
    again = torch_module.gradients(params, x, t)
    assert list(again) == list(grads) == list(shapes)
    for key, shape in shapes.items():
        assert isinstance(grads[key], torch.Tensor) and tuple(grads[key].shape) == shape, key
        assert grads[key].dtype == torch.float64, key
        assert torch.equal(again[key], grads[key]), key


@pytest.mark.parametrize("case_id", list(BY_ID))
def test_float32(build, case_id):
    """float32 inputs and parameters give float32 results that agree with torch in float32."""
    case = BY_ID[case_id]
    np_module, torch_module = build(case.model)
    params, x, t = make_data(case, 17, seed=5, dtype=torch.float32)
    assert x.dtype == torch.float32
    want_loss, want_grads, _ = reference(case, params, x, t)

    np_loss, np_grads = np_module.loss_and_gradients(*numpy_args(params, x, t))
    t_loss, torch_grads = torch_module.loss_and_gradients(params, x, t)
    assert t_loss.dtype == torch.float32
    assert_close("numpy loss", np_loss, want_loss, TOLERANCE_32)
    assert_close("torch loss", t_loss, want_loss, TOLERANCE_32)
    for key, want in want_grads.items():
        assert np_grads[key].dtype == np.float32, f"numpy {key}: {np_grads[key].dtype}"
        assert torch_grads[key].dtype == torch.float32, f"torch {key}: {torch_grads[key].dtype}"
        assert_close(f"numpy {key}", np_grads[key], want, TOLERANCE_32)
        assert_close(f"torch {key}", torch_grads[key], want, TOLERANCE_32)


@pytest.mark.parametrize("case_id", list(BY_ID))
def test_init_params(build, case_id):
    """Shapes of PARAM_SHAPES, float64, within torch.nn.Linear's bound 1/sqrt(fan_in); seeded."""
    case = BY_ID[case_id]
    np_module, torch_module = build(case.model)
    fan_in = {}
    for i, layer in enumerate(case.layers):
        if isinstance(layer, sy.Linear):
            fan_in[f"{i}.weight"] = fan_in[f"{i}.bias"] = layer.in_features
    for module, as_numpy in [(np_module, np.asarray), (torch_module, lambda v: v.numpy())]:
        shapes = module.PARAM_SHAPES
        first, second, other = module.init_params(0), module.init_params(0), module.init_params(1)
        assert list(first) == list(shapes)
        for key, shape in shapes.items():
            value = as_numpy(first[key])
            assert value.shape == shape and value.dtype == np.float64, key
            bound = 1 / math.sqrt(fan_in[key])
            assert np.all(np.abs(value) <= bound), key
            assert np.abs(value).max() > 0, key
            np.testing.assert_array_equal(as_numpy(second[key]), value)
        assert any(not np.array_equal(as_numpy(other[k]), as_numpy(first[k])) for k in shapes)
        assert list(module.init_params()) == list(shapes)  # the default seed
