"""The committed modules, imported as a user imports them, train: the loss goes down."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def generated(monkeypatch):
    """A golden module imported by its name, as a user imports one from the folder it was written to."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "golden"))
    return lambda name: monkeypatch.delitem(sys.modules, name, raising=False) or importlib.import_module(name)


def sgd(module, params, x, t, lr, steps):
    losses = []
    for _ in range(steps):
        loss, grads = module.loss_and_gradients(params, x, t)
        losses.append(float(loss))
        params = {k: params[k] - lr * grads[k] for k in params}  # w <- w - lr * dL/dw, as in the seeds
    return params, losses


def test_binary_classifier_learns_a_linear_boundary(generated):
    from_generated = generated("binary_classifier_numpy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6))
    t = (x[:, :1] - x[:, 1:2] > 0).astype(float)
    params, losses = sgd(from_generated, from_generated.init_params(seed=0), x, t, lr=0.5, steps=150)
    accuracy = ((from_generated.forward(params, x) > 0.5) == t).mean()
    assert losses[-1] < 0.5 * losses[0] and accuracy > 0.9


def test_multiclass_classifier_with_one_hot_targets(generated):
    module = generated("multiclass_classifier_numpy")
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 6)) * 3
    labels = rng.integers(0, 3, size=150)
    x = centers[labels] + rng.normal(size=(150, 6))
    t = np.eye(3)[labels]  # one-hot, as F.one_hot makes them
    params, losses = sgd(module, module.init_params(seed=0), x, t, lr=0.2, steps=100)
    accuracy = (module.forward(params, x).argmax(axis=1) == labels).mean()
    assert losses[-1] < 0.3 * losses[0] and accuracy > 0.9


def test_regression_in_torch_on_float32(generated):
    module = generated("regression_torch")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    t = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.3
    params = {k: v.float() for k, v in module.init_params(seed=0).items()}
    params, losses = sgd(module, params, x, t, lr=0.05, steps=200)
    assert all(v.dtype == torch.float32 for v in params.values())
    assert losses[-1] < 0.05 * losses[0]
