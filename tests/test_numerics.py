"""Numerics at the edges: the generated code gives torch's finite loss and gradients there too.

Every case runs both backends in float64 (relative error ≤ 1e-10) and float32 (≤ 1e-6), against
torch's own modules and autograd in the same dtype. The relative error of a tensor is
max |ours − torch| / max |torch| (an absolute floor of 1e-30 where torch's tensor is all zeros).
One exception, in float32 only: where torch's own float32 result is more than 1e-6 from its float64
result (networks driven into saturation: up to 2e-5, because 1 − tanh² of a float32 tanh near ±1 keeps
few correct digits), two float32 computations cannot agree to 1e-6. There ours must be no further from
the float64 result than torch's float32 result is, times 4: NumPy's float32 tanh is less accurate near
±1 than torch's (0.5 against 0.25 units in the last place), and 1 − tanh² amplifies the difference.
"""

import math

import numpy as np
import pytest
import torch

import symprop as sy

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-6}
DTYPES = [torch.float64, torch.float32]


def torch_layers(model):
    layers = []
    for layer in model.net:
        if isinstance(layer, sy.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias))
        else:
            layers.append({sy.Sigmoid: torch.nn.Sigmoid(), sy.Tanh: torch.nn.Tanh(), sy.ReLU: torch.nn.ReLU(),
                           sy.LogSoftmax: torch.nn.LogSoftmax(dim=-1), sy.Softmax: torch.nn.Softmax(dim=-1)}
                          [type(layer)])
    return torch.nn.Sequential(*layers)


def torch_loss(loss):
    return {sy.CrossEntropyLoss: torch.nn.CrossEntropyLoss, sy.NLLLoss: torch.nn.NLLLoss,
            sy.BCELoss: torch.nn.BCELoss, sy.BCEWithLogitsLoss: torch.nn.BCEWithLogitsLoss,
            sy.KLDivLoss: torch.nn.KLDivLoss, sy.MSELoss: torch.nn.MSELoss}[type(loss)](reduction=loss.reduction)


def error(ours, theirs) -> float:
    ours = torch.as_tensor(np.asarray(ours) if not torch.is_tensor(ours) else ours).double()
    theirs = theirs.double()
    assert ours.shape == theirs.shape
    assert torch.isfinite(ours).all(), "symprop gave a non-finite value"
    scale = max(theirs.abs().max().item(), 1e-30)
    return (ours - theirs).abs().max().item() / scale


def torch_reference(model, params, x, t, dtype):
    net = torch_layers(model).to(dtype)
    net.load_state_dict({k: v.to(dtype) for k, v in params.items()})
    value = torch_loss(model.loss)(net(x.to(dtype)), t if t.dtype == torch.int64 else t.to(dtype))
    value.backward()
    assert torch.isfinite(value), "torch itself is not finite here; such cases go in the README"
    return {"loss": value.detach(), **{k: p.grad for k, p in net.named_parameters()}}


def agrees(ours, reference, exact, dtype) -> bool:
    """Within the tolerance of torch; in float32, where torch's own float32 result is further than that
    from the float64 one (saturated networks), within 4× torch's own distance from the float64 result."""
    tolerance = TOLERANCE[dtype]
    if error(ours, reference) <= tolerance:
        return True
    return dtype == torch.float32 and error(ours, exact) <= max(tolerance, 4 * error(reference, exact))


def check(build, model, params, x, t, dtype):
    """Both generated modules against torch, in `dtype`; params, x, t are float64 or int64 tensors."""
    numpy_module, torch_module = build(model)
    reference = torch_reference(model, params, x, t, dtype)
    exact = torch_reference(model, params, x, t, torch.float64)
    params = {k: v.to(dtype) for k, v in params.items()}
    x = x.to(dtype)
    t = t if t.dtype == torch.int64 else t.to(dtype)

    loss, grads = torch_module.loss_and_gradients(params, x, t)
    assert loss.dtype == dtype and all(g.dtype == dtype for g in grads.values())
    ours = {"torch": {"loss": loss, **grads}}
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no log(0), no 0·∞
        loss, grads = numpy_module.loss_and_gradients({k: v.numpy() for k, v in params.items()}, x.numpy(),
                                                      t.numpy())
    assert all(g.dtype == x.numpy().dtype for g in grads.values())
    ours["numpy"] = {"loss": torch.tensor(loss, dtype=torch.float64), **grads}
    for backend, values in ours.items():
        for key in reference:
            assert agrees(values[key], reference[key], exact[key], dtype), (backend, key, values[key], reference[key])


def identity_params(n, bias=None):
    params = {"0.weight": torch.eye(n, dtype=torch.float64)}
    if bias is not None:
        params["0.bias"] = torch.tensor(bias, dtype=torch.float64)
    return params


LOGITS = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [0.5, -0.5, 1000.0],
                       [-1000.0, -1000.0, -999.0]], dtype=torch.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_over_logits_of_1000(build, dtype, reduction):
    model = sy.Model(sy.Sequential(sy.Linear(3, 3)), sy.CrossEntropyLoss(reduction), name="ce_index")
    check(build, model, identity_params(3, [0.0, 0.0, 0.0]), LOGITS, torch.tensor([0, 0, 2, 1]), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cross_entropy_with_probability_targets_over_logits_of_1000(build, dtype):
    model = sy.Model(sy.Sequential(sy.Linear(3, 3)), sy.CrossEntropyLoss(target="probs"), name="ce_probs")
    targets = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)
    check(build, model, identity_params(3, [0.0, 0.0, 0.0]), LOGITS, targets, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("target", [0, 1])
def test_cross_entropy_with_1e4_in_a_single_class(build, dtype, target):
    model = sy.Model(sy.Sequential(sy.Linear(3, 3, bias=False)), sy.CrossEntropyLoss(), name="ce_1e4")
    x = torch.tensor([[1e4, 0.0, 0.0], [0.0, 1e4, 0.0]], dtype=torch.float64)
    check(build, model, identity_params(3), x, torch.tensor([target, target]), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("loss", [sy.NLLLoss(), sy.KLDivLoss("batchmean")], ids=["nll", "kl_div"])
def test_log_softmax_over_logits_of_1000(build, dtype, loss):
    model = sy.Model(sy.Sequential(sy.Linear(3, 3), sy.LogSoftmax()), loss, name="log_softmax")
    targets = torch.tensor([0, 1, 2, 2]) if isinstance(loss, sy.NLLLoss) else \
        torch.tensor([[0.2, 0.3, 0.5], [0.0, 0.0, 1.0], [0.0, 0.5, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)
    check(build, model, identity_params(3, [0.0, 0.0, 0.0]), LOGITS, targets, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_of_1000(build, dtype, reduction):
    model = sy.Model(sy.Sequential(sy.Linear(2, 1)), sy.BCEWithLogitsLoss(reduction), name="bce_logits")
    params = {"0.weight": torch.tensor([[1.0, 0.0]], dtype=torch.float64),
              "0.bias": torch.zeros(1, dtype=torch.float64)}
    x = torch.tensor([[1000.0, 0.0], [-1000.0, 0.0], [1000.0, 1.0], [-1000.0, 1.0], [3.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[1.0], [0.0], [0.0], [1.0], [0.3]], dtype=torch.float64)
    check(build, model, params, x, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("targets", [[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.25, 0.75], [0.0, 1.0, 1.0, 0.0]])
def test_bce_over_probabilities_of_exactly_0_and_1(build, dtype, targets):
    """σ(±800) is exactly 0 or 1: torch clamps log at −100, so each such term counts 100 (times its weight),
    and its gradient through the sigmoid is 0; symprop's BCE is defined with the same clamp."""
    model = sy.Model(sy.Sequential(sy.Linear(1, 1), sy.Sigmoid()), sy.BCELoss(), name="bce_clamp")
    params = {"0.weight": torch.tensor([[1.0]], dtype=torch.float64), "0.bias": torch.zeros(1, dtype=torch.float64)}
    x = torch.tensor([[800.0], [-800.0], [800.0], [-800.0]], dtype=torch.float64)
    check(build, model, params, x, torch.tensor(targets, dtype=torch.float64)[:, None], dtype)


def test_bce_clamp_value(build):
    """The clamp itself: y = 0 with t = 1 costs exactly 100, as in torch."""
    numpy_module, _ = build(sy.Model(sy.Sequential(sy.Linear(1, 1), sy.Sigmoid()), sy.BCELoss("sum"), name="clamp"))
    params = {"0.weight": np.array([[1.0]]), "0.bias": np.zeros(1)}
    assert numpy_module.loss(params, np.array([[-800.0]]), np.array([[1.0]])) == pytest.approx(100.0, rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_kl_div_with_exact_zeros_in_the_target(build, dtype, reduction):
    model = sy.Model(sy.Sequential(sy.Linear(3, 3), sy.LogSoftmax()), sy.KLDivLoss(reduction), name="kl_zeros")
    x = torch.tensor([[0.3, -1.0, 2.0], [5.0, 0.0, -5.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    params = identity_params(3, [0.1, -0.2, 0.3])
    check(build, model, params, x, t, dtype)


SATURATING = [
    (sy.Sequential(sy.Linear(4, 8), sy.Sigmoid(), sy.Linear(8, 3)), sy.CrossEntropyLoss()),
    (sy.Sequential(sy.Linear(4, 8), sy.Tanh(), sy.Linear(8, 8), sy.Tanh(), sy.Linear(8, 2)), sy.MSELoss()),
    (sy.Sequential(sy.Linear(4, 6), sy.Tanh(), sy.Linear(6, 1), sy.Sigmoid()), sy.MSELoss("sum")),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", range(len(SATURATING)))
def test_saturated_sigmoid_and_tanh_networks(build, dtype, case):
    net, loss = SATURATING[case]
    model = sy.Model(net, loss, name=f"saturated{case}")
    generator = torch.Generator().manual_seed(case)
    shapes = torch_layers(model).state_dict()
    params = {k: torch.randn(v.shape, generator=generator, dtype=torch.float64) for k, v in shapes.items()}
    x = torch.randn(16, 4, generator=generator, dtype=torch.float64) * 100  # inputs ×100: deep in saturation
    if isinstance(loss, sy.CrossEntropyLoss):
        t = torch.randint(0, model.outputs, (16,), generator=generator)
    else:
        t = torch.rand(16, model.outputs, generator=generator, dtype=torch.float64)
    check(build, model, params, x, t, dtype)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_cross_entropy_keeps_a_small_log_sum_exp(build, target):
    """With the true class at the max logit, loss = log(1 + exp(-14)): tiny next to m = 30.

    Computed as m + log(s) - z it loses 2e-9 relative; as log(s) - (z - m) it matches torch.
    """
    numpy_module, torch_module = build(sy.Model(sy.Sequential(sy.Linear(2, 2)), sy.CrossEntropyLoss()))
    module = numpy_module if target == "numpy" else torch_module
    params = {"0.weight": np.eye(2), "0.bias": np.zeros(2)}
    x, t = np.array([[30.0, 16.0]]), np.array([0])
    if target == "torch":
        params = {k: torch.from_numpy(v) for k, v in params.items()}
        x, t = torch.from_numpy(x), torch.from_numpy(t)
    reference = torch.nn.functional.cross_entropy(torch.tensor([[30.0, 16.0]], dtype=torch.float64),
                                                  torch.tensor([0])).item()
    assert abs(reference - math.log1p(math.exp(-14.0))) < 1e-15  # the value is what we think it is
    assert abs(float(module.loss(params, x, t)) - reference) / reference < 1e-12
