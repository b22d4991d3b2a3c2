"""Kinks and overflow: at a kink, the derivative torch gives for the function the expression has the shape of;
and finite gradients wherever torch's own function has them (mish, softplus, silu written by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as TF

import symprop as S
from symprop.derivation import Derivation

# z at the kinks (0, and ±1 for hardtanh's bounds), ordinary points, and where exp overflows in float64 and float32
POINTS = [-1.0, 0.0, 1.0, 0.5, 30.0, 100.0, 800.0, -800.0]
SHAPES = {
    "relu": ("Max(z, 0)", torch.relu),
    "leaky_relu": ("Max(z, z/10)", lambda z: TF.leaky_relu(z, 0.1)),
    "hardtanh": ("Min(Max(z, -1), 1)", TF.hardtanh),
    "abs": ("Abs(z)", torch.abs),
    "mish": ("z*tanh(log(1 + exp(z)))", TF.mish),
    "softplus": ("log(1 + exp(z))", TF.softplus),
    "silu": ("z*sigmoid(z)", TF.silu),
    # two ReLUs in separate terms (the pinball loss), in either order of their arguments and of the terms, and with
    # the kink moved to 1: each is 0 at its tie, as torch's relu, never read as the two sides of one Max
    "pinball": ("Max(z, 0)/4 + 3*Max(-z, 0)/4", lambda z: torch.relu(z) / 4 + 3 * torch.relu(-z) / 4),
    "pinball_swapped": ("3*Max(0, -z)/4 + Max(0, z)/4", lambda z: torch.relu(z) / 4 + 3 * torch.relu(-z) / 4),
    "pinball_shifted": ("Max(z - 1, 0)/4 + 3*Max(1 - z, 0)/4",
                        lambda z: torch.relu(z - 1) / 4 + 3 * torch.relu(1 - z) / 4),
    "two_relus_shifted": ("Max(0, 1 - z) + Max(z - 1, 0)", lambda z: torch.relu(1 - z) + torch.relu(z - 1)),
}


def modules(expr: str, name: str):
    """Linear(1, 8) → the activation → a sum: dL/d(bias) is the activation's derivative at each bias."""
    model = S.Model(S.Sequential(S.Linear(1, len(POINTS)), S.Elementwise(expr), S.Linear(len(POINTS), 1, bias=False)),
                    S.ElementwiseLoss("y"), inputs=1, name=name)
    out = {}
    for backend in ("numpy", "torch"):
        namespace: dict = {}
        exec(compile(Derivation(model).render(backend), name, "exec"), namespace)  # noqa: S102
        out[backend] = namespace["loss_and_gradients"]
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES)
def test_derivatives_at_kinks_and_far_out_are_torchs(shape, dtype):
    expr, function = SHAPES[shape]
    z = torch.tensor(POINTS, dtype=dtype, requires_grad=True)
    function(z).sum().backward()
    want = z.grad
    assert torch.isfinite(want).all()
    params = {"0.weight": torch.zeros(len(POINTS), 1, dtype=dtype), "0.bias": z.detach().clone(),
              "2.weight": torch.ones(1, len(POINTS), dtype=dtype)}
    x, t = torch.zeros(1, 1, dtype=dtype), torch.zeros(1, 1, dtype=dtype)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-6
    for backend, loss_and_gradients in modules(expr, shape).items():
        if backend == "numpy":
            _, grads = loss_and_gradients({k: v.numpy() for k, v in params.items()}, x.numpy(), t.numpy())
            ours = torch.from_numpy(np.asarray(grads["0.bias"]))
        else:
            ours = loss_and_gradients(params, x, t)[1]["0.bias"]
        assert torch.isfinite(ours).all(), (backend, ours)
        assert (ours - want).abs().max() <= tolerance * max(want.abs().max().item(), 1.0), (backend, ours, want)


@pytest.mark.parametrize("expr", ["Max(y - t, 0)/4 + 3*Max(t - y, 0)/4", "3*Max(t - y, 0)/4 + Max(y - t, 0)/4",
                                  "Max(0, y - t)/4 + 3*Max(0, t - y)/4"])
def test_the_pinball_loss_at_a_tie_is_torchs_in_every_order(expr):
    """symprop derive --expr gave (Heaviside(y - t, 1) - 3*Heaviside(t - y, 0))/4: 1/4 at y = t, where torch's relu
    form gives 0 (issue 26, item 2)."""
    from click.testing import CliRunner

    from symprop.cli import main

    result = CliRunner().invoke(main, ["derive", "--expr", expr, "--wrt", "y"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].strip() == "(Heaviside(-t + y, 0) - 3*Heaviside(t - y, 0))/4"
