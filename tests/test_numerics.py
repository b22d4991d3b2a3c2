"""Regressions in floating point: the order of operations in printed code matters."""

import math

import numpy as np
import pytest
import torch

import symprop as sy


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
