"""Hessian-vector products: the generated modules' hvp(params, ..., t, v) against torch's own, torch.autograd's
double backward (torch.autograd.functional.hvp) in float64, for networks of every kind of op."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_ops import modules
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import symprop as S
from symprop.check import random_batch, random_params, reference_ggn_vp, reference_hvp
from symprop.cli import load_model, main
from symprop.derivation import Derivation


class Encoder(torch.nn.Module):
    """One Transformer encoder layer, mean-pooled, and a linear head."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.layer(x).mean(1))


class TimesInput(torch.nn.Module):
    """a(z)·z, a clamp times its own input: the hvp's Piecewise has a piece that is never the first to hold (its
    NumPy module printed `False.astype(...)`)."""

    def __init__(self, activation):
        super().__init__()
        self.fc, self.out, self.activation = torch.nn.Linear(3, 4), torch.nn.Linear(4, 1), activation

    def forward(self, x):
        z = self.fc(x)
        return self.out(self.activation(z) * z)


def case(name: str):
    """(torch network, loss, x, t, how from_torch reads it)."""
    torch.manual_seed(0)
    x, classes = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 3, (5,))
    images = torch.randn(5, 1, 6, 6, dtype=torch.float64)
    nn = torch.nn
    return {
        "tanh, MSE": (nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), nn.MSELoss(), x,
                      torch.randn(5, 2, dtype=torch.float64), {"inputs": 3}),
        "ReLU, cross-entropy": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)), nn.CrossEntropyLoss(), x,
                                classes, {"inputs": 3}),
        "layer norm, GELU, sigmoid, BCE": (
            nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.GELU(), nn.Linear(4, 1), nn.Sigmoid()), nn.BCELoss(),
            x, torch.rand(5, 1, dtype=torch.float64), {"inputs": 3}),
        "convolution, batch norm, max pooling": (
            nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 3)), nn.CrossEntropyLoss(), images, classes, {"inputs": {"x": (1, 6, 6)}}),
        "hardtanh times its input": (TimesInput(torch.nn.functional.hardtanh), nn.MSELoss(), 3 * x,
                                     torch.randn(5, 1, dtype=torch.float64), {"export": True}),
        "hardtanh and relu6 times their input": (  # a Piecewise of 36 pieces, its tangent more: not folded
            TimesInput(lambda z: torch.nn.functional.hardtanh(z) + torch.nn.functional.relu6(z)), nn.MSELoss(),
            3 * x, torch.randn(5, 1, dtype=torch.float64), {"export": True}),
        "Transformer encoder layer": (Encoder(), nn.MSELoss(), torch.randn(5, 4, 8, dtype=torch.float64),
                                      torch.randn(5, 2, dtype=torch.float64), {"export": True}),
    }[name]


@pytest.mark.parametrize("name", ["tanh, MSE", "ReLU, cross-entropy", "layer norm, GELU, sigmoid, BCE",
                                  "convolution, batch norm, max pooling", "hardtanh times its input",
                                  "hardtanh and relu6 times their input", "Transformer encoder layer"])
def test_hvp_agrees_with_torchs_double_backward(name):
    net, loss, x, t, how = case(name)
    net = net.double()
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t) if how.get("export") else \
        S.from_torch(net, loss, inputs=how["inputs"])
    params = {k: p.detach().clone() for k, p in net.named_parameters()}
    v = {k: torch.randn_like(p) for k, p in params.items()}

    def f(*values):
        return loss(functional_call(net, dict(zip(params, values, strict=True)), (x,)), t)

    with sdpa_kernel(SDPBackend.MATH):  # torch's fused attention has no double backward
        want_loss, want = torch.autograd.functional.hvp(f, tuple(params.values()), tuple(v.values()))
    for backend, namespace in modules(model, hvp=True).items():
        if backend == "numpy":
            got_loss, got = namespace["hvp"]({k: p.numpy() for k, p in params.items()}, x.numpy(), t.numpy(),
                                             {k: d.numpy() for k, d in v.items()})
        else:
            got_loss, got = namespace["hvp"](params, x, t, v)
        assert abs(float(got_loss) - want_loss.item()) <= 1e-12 * abs(want_loss.item()), backend
        for key, value in zip(params, want, strict=True):
            error = (torch.as_tensor(np.asarray(got[key])) - value).abs().max().item()
            assert error <= 1e-10 * max(value.abs().max().item(), 1.0), f"{backend} {key}: {error}"


def test_hvp_is_derived_only_when_asked_and_reads_as_a_product():
    model = S.Model(S.Sequential(S.Linear(3, 4), S.Tanh(), S.Linear(4, 2)), S.MSELoss(), inputs=3)
    assert "def hvp(" not in Derivation(model).render("numpy")
    code = Derivation(model, hvp=True).render("numpy")
    assert "def hvp(params, x, t, v):" in code and 'v_w0 = params["v:0.weight"]' in code


def test_hvp_names_a_missing_direction_in_one_line():
    model = S.Model(S.Sequential(S.Linear(3, 2)), S.MSELoss(), inputs=3)
    namespace = modules(model, hvp=True)["numpy"]
    params = namespace["init_params"]()
    with pytest.raises(ValueError, match=r"^v lacks '0.bias': it needs one direction per parameter"):
        namespace["hvp"](params, np.zeros((2, 3)), np.zeros((2, 2)), {"0.weight": np.zeros((2, 3))})


def test_cli_derive_hvp_writes_it_and_refuses_it_with_expr(tmp_path):
    root = Path(__file__).parent.parent
    result = CliRunner().invoke(main, ["derive", str(root / "examples" / "binary_classifier.toml"), "--hvp", "--out",
                                       str(tmp_path), "--target", "numpy"])
    assert result.exit_code == 0, result.output
    code = (tmp_path / "binary_classifier_numpy.py").read_text()
    assert "def hvp(params, x, t, v):" in code and "--hvp" in code.splitlines()[1]
    refused = CliRunner().invoke(main, ["derive", "--expr", "w*x", "--wrt", "w", "--hvp"])
    assert refused.exit_code == 2 and "--hvp goes with a SOURCE" in refused.output


def test_hessian_is_torchs_and_newtons_method_converges_on_logistic_regression():
    """hessian(params, x, t) is torch.autograd.functional.hessian's over all parameters flattened; with it, Newton's
    method takes logistic regression to a gradient norm of 1e-12 in at most 10 steps."""
    torch.manual_seed(0)
    x = torch.randn(64, 3, dtype=torch.float64)
    t = (x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.8 * torch.randn(64, dtype=torch.float64) > 0)
    t = t.to(torch.float64)[:, None]  # labels that no line separates: a finite minimum
    model = S.Model(S.Sequential(S.Linear(3, 1)), S.BCEWithLogitsLoss(), inputs=3)
    loaded = modules(model, hvp=True)
    params = {"0.weight": torch.zeros(1, 3, dtype=torch.float64), "0.bias": torch.zeros(1, dtype=torch.float64)}

    def f(flat):
        w, b = flat[:3].reshape(1, 3), flat[3:]
        return torch.nn.functional.binary_cross_entropy_with_logits(x @ w.T + b, t)

    flat = torch.randn(4, dtype=torch.float64)
    want = torch.autograd.functional.hessian(f, flat)
    at = {"0.weight": flat[:3].reshape(1, 3), "0.bias": flat[3:]}
    for backend, namespace in loaded.items():
        arrays = {k: v.numpy() for k, v in at.items()} if backend == "numpy" else at
        data = (x.numpy(), t.numpy()) if backend == "numpy" else (x, t)
        got = torch.as_tensor(np.asarray(namespace["hessian"](arrays, *data)))
        assert got.shape == (4, 4) and (got - want).abs().max() <= 1e-12 * want.abs().max(), backend
    namespace = loaded["numpy"]
    params = {k: v.numpy() for k, v in params.items()}
    for _ in range(10):
        _, grads = namespace["loss_and_gradients"](params, x.numpy(), t.numpy())
        gradient = np.concatenate([grads[k].reshape(-1) for k in params])
        if np.linalg.norm(gradient) <= 1e-12:
            break
        move = np.linalg.solve(namespace["hessian"](params, x.numpy(), t.numpy()), gradient)
        params = {"0.weight": params["0.weight"] - move[:3].reshape(1, 3), "0.bias": params["0.bias"] - move[3:]}
    assert np.linalg.norm(gradient) <= 1e-12, np.linalg.norm(gradient)


def test_hessian_refuses_more_than_ten_thousand_parameters():
    namespace = modules(S.Model(S.Sequential(S.Linear(100, 101)), S.MSELoss(), inputs=100), hvp=True)["numpy"]
    with pytest.raises(ValueError, match=r"^hessian: the model has 10201 parameters, more than 10,000: use hvp$"):
        namespace["hessian"](namespace["init_params"](), np.zeros((2, 100)), np.zeros((2, 101)))


EXAMPLES = sorted(p.name for p in (Path(__file__).parent.parent / "examples").glob("*.toml")) + ["lenet.py:build",
                                                                                            "gpt.py:build"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_examples_hvp_and_ggn_vp_agree_with_torch(example):
    """Each example, as its spec or script declares it: hvp in both modules against torch's double backward, and
    ggn_vp against Jᵀ H J v built by torch (jvp, the loss's hvp in the output, vjp)."""
    model = load_model(str(Path(__file__).parent.parent / "examples" / example))
    generator = torch.Generator().manual_seed(0)
    params = random_params(model, generator)
    inputs, t = random_batch(model, 5, generator)
    v = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in params.items()}
    wanted = {"hvp": reference_hvp(model, params, inputs, t, v),
              "ggn_vp": reference_ggn_vp(model, params, inputs, t, v)}
    loaded = modules(model, hvp=True)
    assert ("ggn_vp" in loaded["numpy"]) == (example != "residual_mlp.toml")  # its L2 penalty reads a weight
    for backend, namespace in loaded.items():
        for product, want in wanted.items():
            if product not in namespace:
                continue
            if backend == "numpy":
                _, got = namespace[product]({k: p.numpy() for k, p in params.items()},
                                            *(x.numpy() for x in inputs.values()), t.numpy(),
                                            {k: d.numpy() for k, d in v.items()})
            else:
                _, got = namespace[product](params, *inputs.values(), t, v)
            for key, value in want.items():
                error = (torch.as_tensor(np.asarray(got[key])) - value).abs().max().item()
                assert error <= 1e-10 * max(value.abs().max().item(), 1.0), f"{backend} {product} {key}: {error}"


def test_symprop_check_compares_the_hvp_of_modules_derived_with_it(tmp_path):
    spec = str(Path(__file__).parent.parent / "examples" / "iris_mlp.toml")
    assert CliRunner().invoke(main, ["derive", spec, "--hvp", "--out", str(tmp_path)]).exit_code == 0
    result = CliRunner().invoke(main, ["check", spec, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "hvp 0.weight (numpy)" in result.output and "hvp 2.bias (torch)" in result.output
    assert "ggn_vp 0.weight (numpy)" in result.output and "ggn_vp 2.bias (torch)" in result.output


def test_ggn_vp_of_softmax_cross_entropy_reads_as_the_books_output_hessian():
    """For softmax with cross-entropy the loss's Hessian in the logits is (diag(p) − p pᵀ)/N: the product it
    derives is p ⊙ (Jv − ⟨p, Jv⟩)/N: ṗ/N, with Jv = ż the tangent of the logits and ⟨p, Jv⟩ = ṡ/s."""
    model = S.Model(S.Sequential(S.Linear(3, 4), S.Tanh(), S.Linear(4, 3)), S.CrossEntropyLoss(), inputs=3)
    code = Derivation(model, hvp=True).render("numpy")
    body = code[code.index("def ggn_vp"):code.index("def hessian")]
    assert "p_1_dot *= z2_dot_1 - s_1_dot / s_1" in body and "q = p_1_dot\n    q /= N" in body, body


def test_the_hessian_free_example_trains_faster_per_step_than_adam(capsys):
    """examples/hessian_free.py: conjugate gradient on ggn_vp takes the Iris MLP's loss under Adam's in 5 steps."""
    import importlib.util

    path = Path(__file__).parent.parent / "examples" / "hessian_free.py"
    spec = importlib.util.spec_from_file_location("hessian_free", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--steps", "5"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["5"]]
    (_, free, adam), = rows
    assert float(free) < 0.1 < float(adam), rows


def test_the_torch_hvp_adds_the_product_rules_second_product_into_the_first():
    """Ȧ·B + A·Ḃ, the product rule's two matrix products, as one call: the second added into the first's array by
    its GEMM (addmm_), with no array of it and no pass to add them (their agreement: the test above). Attention's
    batched products are still two."""
    net, loss, x, t, _ = case("Transformer encoder layer")
    model = S.from_torch(net.double(), loss, example_inputs=(x,), example_target=t)
    code = Derivation(model, hvp=True).render("torch")
    hvp = code[code.index("def hvp("):]
    assert hvp.count(".addmm_(") >= 8
    assert not re.search(r"@ \w*weight\w*(\.T)? \+ \(", hvp)
    assert ".addmm_(" not in Derivation(model, hvp=True).render("numpy")


def test_a_loss_function_through_torch_export_has_ggn_vp_unless_it_reads_a_parameter():
    """torch.export's program of a loss function holds every parameter of the network; only those it reads count:
    F.cross_entropy reads none, so the Gauss–Newton product is the output's loss Hessian alone."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                              torch.nn.Linear(4, 3)).double().eval()  # its buffers are not read by the loss either
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 3, (5,))

    def penalized(out, t):
        return torch.nn.functional.cross_entropy(out, t) + 0.1 * net[0].weight.pow(2).sum()

    for loss, has_ggn in ((lambda out, t: torch.nn.functional.cross_entropy(out, t), True), (penalized, False)):
        model = S.from_torch(net, loss, example_inputs=(x,), example_target=t)
        loaded = modules(model, hvp=True)
        assert ("ggn_vp" in loaded["torch"]) == ("ggn_vp" in loaded["numpy"]) == has_ggn
        if not has_ggn:
            continue
        params = {k: p.detach().clone() for k, p in net.named_parameters()}
        v = {k: torch.randn_like(p) for k, p in params.items()}
        want = reference_ggn_vp(model, params, {"x": x}, t, v)
        for backend, namespace in loaded.items():
            if backend == "numpy":
                _, got = namespace["ggn_vp"]({k: p.numpy() for k, p in params.items()}, x.numpy(), t.numpy(),
                                             {k: d.numpy() for k, d in v.items()})
            else:
                _, got = namespace["ggn_vp"](params, x, t, v)
            for key, value in want.items():
                error = (torch.as_tensor(np.asarray(got[key])) - value).abs().max().item()
                assert error <= 1e-10 * max(value.abs().max().item(), 1.0), f"{backend} {key}: {error}"


def test_a_models_own_loss_has_the_gauss_newton_product_of_its_logits(monkeypatch):
    """examples/gpt.py computes its own loss (forward(idx, targets) -> (logits, loss)): ggn_vp is Jᵀ H J v, J the
    logits' Jacobian and H the Hessian of nanoGPT's cross-entropy in them, here built by torch.func on the module
    itself. (It came out 0, and so did the reference that replays the model: the loss read the logits as forward had
    computed them, not the output held constant.)"""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpt_example", Path(__file__).parent.parent / "examples" / "gpt.py")
    gpt = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpt_example", gpt)  # its config dataclass looks its module up
    spec.loader.exec_module(gpt)
    net, loss, (idx, targets) = gpt.build(batch=3)
    net = net.double()
    model = S.from_torch(net, loss, example_inputs=(idx, targets), name="gpt_ggn")
    generator = torch.Generator().manual_seed(3)
    params = {k: p.detach() for k, p in net.named_parameters()}
    v = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in params.items()}

    def logits(p):
        return functional_call(net, p, (idx, targets))[0]

    def cross_entropy(y):
        return torch.nn.functional.cross_entropy(y.view(-1, y.size(-1)), targets.view(-1), ignore_index=-1)

    with sdpa_kernel(SDPBackend.MATH):
        y, jv = torch.func.jvp(logits, (params,), (v,))
        _, hjv = torch.func.jvp(torch.func.grad(cross_entropy), (y.detach(),), (jv,))
        want = torch.func.vjp(logits, params)[1](hjv)[0]
    namespace = modules(model, hvp=True)["torch"]
    _, got = namespace["ggn_vp"](params, idx, targets, v)
    for key, value in want.items():
        assert value.abs().max() > 1e-6, key  # a product that is not 0
        error = (got[key] - value).abs().max().item()
        assert error <= 1e-10 * max(value.abs().max().item(), 1.0), (key, error)


def test_a_loss_that_reads_a_second_output_gets_no_gauss_newton_product():
    """A Gaussian head returns (μ, log σ) and its loss reads both: J of the first output alone would leave out log σ's
    block, so the module has hvp but no ggn_vp (it had one, whose log σ block was 0)."""

    class GaussianHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mu, self.log_sigma = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)

        def forward(self, x):
            return self.mu(x), self.log_sigma(x)

    def nll(out, y):
        mu, log_sigma = out
        return (log_sigma + 0.5 * ((y - mu) / log_sigma.exp()) ** 2).mean()

    torch.manual_seed(0)
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    model = S.from_torch(GaussianHead().double(), nll, example_inputs=(x,), example_target=y, name="gaussian_head")
    namespace = modules(model, hvp=True)["numpy"]
    assert "hvp" in namespace and "ggn_vp" not in namespace
