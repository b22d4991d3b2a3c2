"""The Module / functional API: networks as programs, checked against the same network written in torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import import_path

import symprop as S
import symprop.functional as F
from symprop.check import compare, relative_error

TOLERANCE = 1e-10


class Net(S.Module):  # the acceptance example of the issue, as written
    def __init__(self):
        super().__init__()
        self.fc1 = S.Linear(6, 6)
        self.fc2 = S.Linear(6, 1)
        self.side = S.Linear(3, 1, bias=False)

    def forward(self, x, u):
        h = x + F.relu(self.fc1(x))        # a residual connection
        h = h + F.tanh(self.fc1(h))        # fc1 again: one tied weight
        return self.fc2(h) + self.side(u)  # a second input


class TorchNet(torch.nn.Module):  # the same network in torch, written independently
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 6)
        self.fc2 = torch.nn.Linear(6, 1)
        self.side = torch.nn.Linear(3, 1, bias=False)

    def forward(self, x, u):
        h = x + torch.relu(self.fc1(x))
        h = h + torch.tanh(self.fc1(h))
        return self.fc2(h) + self.side(u)


def acceptance_model():
    net = Net()
    return S.Model(net, loss=lambda y, t: F.mse_loss(y, t) + 1e-2 * (net.fc1.weight ** 2).sum(),
                   inputs={"x": 6, "u": 3}, name="residual_net")


def write_and_import(tmp_path, model):
    paths = S.derive_network(model).write(tmp_path)
    assert sorted(p.name for p in paths) == sorted([f"{model.name}_numpy.py", f"{model.name}_torch.py",
                                                    f"{model.name}.tex"])
    return {backend: import_path(tmp_path / f"{model.name}_{backend}.py", f"{tmp_path.name}_{model.name}_{backend}")
            for backend in ("numpy", "torch")}


def test_acceptance_example_agrees_with_torch(tmp_path):
    model = acceptance_model()
    modules = write_and_import(tmp_path, model)
    assert list(modules["numpy"].PARAM_SHAPES) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "side.weight"]
    assert modules["numpy"].INPUT_SHAPES == {"x": (None, 6), "u": (None, 3)}
    reference = TorchNet().double()
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 5, 32):
        x, u = (torch.randn(batch, n, generator=generator, dtype=torch.float64) for n in (6, 3))
        t = torch.randn(batch, 1, generator=generator, dtype=torch.float64)
        reference.zero_grad()
        want = torch.nn.functional.mse_loss(reference(x, u), t) + 1e-2 * (reference.fc1.weight ** 2).sum()
        want.backward()
        grads = {k: p.grad for k, p in reference.named_parameters()}
        loss, ours = modules["numpy"].loss_and_gradients({k: v.numpy() for k, v in state.items()},
                                                         x.numpy(), u.numpy(), t.numpy())
        assert relative_error(loss, want.detach()) <= TOLERANCE
        for key in grads:
            assert relative_error(ours[key], grads[key]) <= TOLERANCE, key
        loss, ours = modules["torch"].loss_and_gradients(state, x, u, t)
        assert relative_error(loss, want.detach()) <= TOLERANCE
        for key in grads:
            assert relative_error(ours[key], grads[key]) <= TOLERANCE, key


def test_acceptance_example_trains_with_sgd(tmp_path):
    modules = write_and_import(tmp_path, acceptance_model())
    rng = np.random.default_rng(0)
    x, u = rng.normal(size=(64, 6)), rng.normal(size=(64, 3))
    t = x[:, :1] - u[:, 1:2]
    params, history = modules["numpy"].train(modules["numpy"].init_params(0), x, u, t, lr=0.05, epochs=30,
                                             batch_size=16)
    assert history[-1] < history[0] / 2
    step, loss, _ = modules["numpy"].sgd_step(params, x, u, t, 0.1)
    assert set(step) == set(params)


# -- other compositions from the same vocabulary, each against symprop.check's torch run ------------
class Classifier(S.Module):
    """Layer norm, concatenation of two branches, a free Parameter, class-index cross-entropy."""

    def __init__(self):
        super().__init__()
        self.a = S.Linear(5, 4)
        self.b = S.Linear(2, 3)
        self.norm = S.LayerNorm(7)
        self.scale = S.Parameter((7,), init="ones")
        self.head = S.Linear(7, 3)

    def forward(self, x, u):
        h = S.cat([F.gelu(self.a(x)), S.sigmoid(self.b(u))], dim=1)
        return self.head(self.norm(h) * self.scale)


class Functional(S.Module):
    """Everything by hand: Parameters, @, .T, sum/mean with dims, reshape, transpose, indexing, exp/log/sqrt."""

    def __init__(self):
        super().__init__()
        self.w = S.Parameter((4, 6), init=("normal", 0.5))
        self.v = S.Parameter((3, 2), init=("uniform", 0.5))
        self.c = S.Parameter((1,), init="zeros")

    def forward(self, x):
        h = F.softplus(x @ self.w.T)                       # (N, 4)
        g = h.reshape(-1, 2, 2).transpose(1, 2)            # (N, 2, 2)
        pooled = g.sum(dim=2) / S.sqrt(1 + g.mean(dim=2) ** 2)   # (N, 2)
        wide = pooled @ self.v.T                           # (N, 3)
        return S.log(1 + S.exp(wide)) - wide[:, 0:1] * h[:, 3:] + self.c


class ByHand(S.Module):
    """F.relu(x @ W.T + b) with free Parameters, a nested Sequential, keepdim sums and broadcasting."""

    def __init__(self):
        super().__init__()
        self.W = S.Parameter((5, 4), init=("uniform", 0.5))
        self.b = S.Parameter((5,), init="zeros")
        self.body = S.Sequential(S.Linear(5, 5), S.Tanh(), S.Linear(5, 3))

    def forward(self, x):
        h = F.relu(x @ self.W.T + self.b)
        h = h - h.mean(dim=1, keepdim=True) + 2 * h.sum(1, keepdim=True) / 5
        return self.body(h) ** 2 / 3


def by_hand_model():
    """Class-index cross-entropy through a loss function: handing t to cross_entropy makes it class indices."""
    net = ByHand()
    return S.Model(net, lambda y, t: F.cross_entropy(y, t) + 1e-3 * (net.body[0].weight ** 2).sum(),
                   inputs=4, name="by_hand")


def classifier_model():
    return S.Model(Classifier(), S.CrossEntropyLoss(), inputs={"x": 5, "u": 2}, name="classifier")


def functional_model():
    model = Functional()
    return S.Model(model, lambda y, t: F.mse_loss(y, t, reduction="sum") + 0.1 * (model.w ** 2).mean(),
                   inputs=6, name="functional")


MODELS = {"classifier": classifier_model, "functional": functional_model, "by_hand": by_hand_model}


@pytest.mark.parametrize("name", MODELS)
def test_compositions_agree_with_torch(tmp_path, name):
    model = MODELS[name]()
    modules = write_and_import(tmp_path, model)
    rows = compare(model, modules, seeds=(0, 1), batches=(1, 6))
    bad = [(row.name, row.error) for row in rows if not row.passed]
    assert not bad, bad
    assert len(rows) == 2 * (1 + len(model.parameters))


def test_sequential_with_a_reused_layer_is_one_tied_parameter(tmp_path):
    shared = S.Linear(4, 4)
    model = S.Model(S.Sequential(shared, S.Tanh(), shared), S.MSELoss(), name="tied")
    assert list(model.parameters) == ["0.weight", "0.bias"]
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    modules = write_and_import(tmp_path, model)
    generator = torch.Generator().manual_seed(3)
    x, t = torch.randn(5, 4, generator=generator, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    net = net.double()
    want = torch.nn.functional.mse_loss(net[0](net(x)), t)
    want.backward()
    state = {k: v.detach() for k, v in net.state_dict().items()}
    _, ours = modules["torch"].loss_and_gradients(state, x, t)
    assert relative_error(ours["0.weight"], net[0].weight.grad) <= TOLERANCE
    assert relative_error(ours["0.bias"], net[0].bias.grad) <= TOLERANCE


def test_by_hand_parameter_names_follow_attribute_paths():
    model = by_hand_model()
    assert list(model.parameters) == ["W", "b", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    assert model.target_shape == ("batch",)


def test_a_loss_function_with_probabilities_says_so():
    model = S.Model(S.Sequential(S.Linear(3, 2)), lambda y, t: F.cross_entropy(y, t), inputs=3, target="probs")
    assert model.target_shape == ("batch", 2) and model.target_kind == "probs"


def test_a_one_hot_of_the_target_makes_it_class_indices(tmp_path):
    """F.one_hot(t, C) in a loss function: the target holds class indices (it was refused, the ids not an input)."""
    model = S.Model(S.Sequential(S.Linear(3, 4), S.Tanh(), S.Linear(4, 3)),
                    lambda y, t: -(F.log_softmax(y, dim=-1) * F.one_hot(t, 3)).sum(), inputs=3, name="one_hot_t")
    assert model.target_kind == "index"
    rows = compare(model, write_and_import(tmp_path, model), seeds=(0, 1), batches=(1, 6))
    assert all(row.passed for row in rows), [(row.name, row.error) for row in rows]
