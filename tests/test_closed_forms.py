"""The derived closed forms themselves: scalar mode, named network steps, and their size."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

import symprop as sy
from symprop.ops.sigmoid import sigmoid

# Network steps name their tensors with real symbols; N is the batch size.
N = sp.Symbol("N", integer=True, positive=True)


def S(name):
    return sp.Symbol(name, real=True)


def same(got, expected):
    """Equal as expressions, and written over the same named steps (no step expanded away)."""
    return got.free_symbols == expected.free_symbols and sp.simplify(got - expected) == 0


# -- scalar mode -----------------------------------------------------------------
w, x, t = sp.symbols("w x t")
a = sp.Function("a")


def test_scalar_single_neuron():
    result = sy.derive("(a(w*x) - t)**2", "w")
    assert list(result) == ["w"]
    a_prime = sp.diff(a(w * x), w) / x  # a'(w*x), as SymPy's Subs(Derivative(...))
    expected = 2 * x * (a(w * x) - t) * a_prime
    assert sp.simplify(result["w"] - expected) == 0
    assert sp.simplify(result["w"] - sp.diff((a(w * x) - t) ** 2, w)) == 0
    # a concrete a: a = tanh gives 2x(tanh(wx) - t)(1 - tanh²(wx))
    concrete = result["w"].subs(a, sp.Lambda(sp.Symbol("u"), sp.tanh(sp.Symbol("u")))).doit()
    assert sp.simplify(concrete - 2 * x * (sp.tanh(w * x) - t) * (1 - sp.tanh(w * x) ** 2)) == 0


def test_scalar_list_of_names():
    result = sy.derive("(a(w*x) - t)**2", ["w", "x", "t"])
    assert list(result) == ["w", "x", "t"]
    a_prime = sp.diff(a(w * x), w) / x
    assert sp.simplify(result["w"] - 2 * x * (a(w * x) - t) * a_prime) == 0
    assert sp.simplify(result["x"] - 2 * w * (a(w * x) - t) * a_prime) == 0
    assert sp.simplify(result["t"] + 2 * (a(w * x) - t)) == 0


def test_scalar_sympy_input():
    expression = (sp.sin(w * x) - t) ** 2 + w**3
    result = sy.derive(expression, [w, "x"])
    assert sp.simplify(result["w"] - (2 * x * sp.cos(w * x) * (sp.sin(w * x) - t) + 3 * w**2)) == 0
    assert sp.simplify(result["x"] - 2 * w * sp.cos(w * x) * (sp.sin(w * x) - t)) == 0
    assert sp.simplify(sy.derive(expression, w)["w"] - result["w"]) == 0


def test_scalar_unknown_name():
    with pytest.raises(sy.SymPropError):
        sy.derive("(a(w*x) - t)**2", "q")


# -- network mode --------------------------------------------------------------------
def steps_of(*layers, loss):
    return sy.Derivation(sy.Model(sy.Sequential(*layers), loss)).steps()


def test_cross_entropy_index_cotangent():
    steps = steps_of(sy.Linear(6, 4), sy.Linear(4, 3), loss=sy.CrossEntropyLoss())
    assert same(steps["shifted"], S("z1") - S("m"))
    assert same(steps["e"], sp.exp(S("shifted")))
    assert same(steps["p"], S("e") / S("s"))
    assert same(steps["dz1"], (S("p") - S("onehot")) / N)


def test_cross_entropy_probs_cotangent():
    steps = steps_of(sy.Linear(6, 4), sy.Linear(4, 3), loss=sy.CrossEntropyLoss(target="probs"))
    assert same(steps["p"], S("e") / S("s"))
    assert same(steps["dz1"], (S("p") - S("t")) / N)


def test_cross_entropy_sum_cotangent():
    steps = steps_of(sy.Linear(6, 4), sy.Linear(4, 3), loss=sy.CrossEntropyLoss("sum"))
    assert same(steps["dz1"], S("p") - S("onehot"))


def test_bce_after_sigmoid_cotangent():
    steps = steps_of(sy.Linear(6, 4), sy.Linear(4, 1), sy.Sigmoid(), loss=sy.BCELoss())
    assert same(steps["h2"], sigmoid(S("z1")))
    # (σ(z1) − t)/N: the log and the σ' cancel, wherever torch's clamp of log at −100 is not reached
    main, condition = steps["dz1"].args[0]
    assert same(main, (S("h2") - S("t")) / N)
    while condition.free_symbols & {S(name) for name in steps if name.startswith("tmp")}:  # common subexpressions
        condition = condition.xreplace({S(name): steps[name] for name in steps if name.startswith("tmp")})
    assert condition == sp.And(S("h2") > sp.exp(-100), S("h2") < 1 - sp.exp(-100))


def test_tanh_backward_is_one_minus_tanh_squared():
    steps = steps_of(sy.Linear(3, 4), sy.Tanh(), sy.Linear(4, 2), loss=sy.MSELoss())
    assert same(steps["h1"], sp.tanh(S("z0")))
    assert same(steps["dz0"], S("dh1") * (1 - S("h1") ** 2))
    assert (1 - S("h1") ** 2) in sp.Mul.make_args(steps["dz0"])  # as written: dh1·(1 − h1²)


@pytest.mark.parametrize("reduction, scale", [("mean", 2 / (3 * N)), ("sum", 2)])
def test_mse_output_cotangent(reduction, scale):
    steps = steps_of(sy.Linear(3, 4), sy.Linear(4, 3), loss=sy.MSELoss(reduction))
    assert same(steps["dz1"], scale * (S("z1") - S("t")))


def test_softmax_steps_mean_what_they_say():
    """Evaluated numerically, e/s is the softmax of z1 and dz1 is torch's gradient of the loss."""
    model = sy.Model(sy.Sequential(sy.Linear(6, 4), sy.Linear(4, 3)), sy.CrossEntropyLoss())
    derivation = sy.Derivation(model)
    steps = derivation.steps()
    statements = {s.name: s for s in derivation.programs["loss_and_gradients"].statements}
    assert statements["m"].kind == "max" and statements["m"].tensor.axes == (1,)
    assert statements["s"].kind == "sum" and statements["s"].tensor.axes == (1,)

    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(5, 3)) * 3
    labels = rng.integers(0, 3, size=5)
    env = {"z1": z1, "m": z1.max(axis=1, keepdims=True), "onehot": np.eye(3)[labels], "N": 5}
    for name in ("shifted", "e", "p", "dz1"):
        symbols = sorted(steps[name].free_symbols, key=lambda s: s.name)
        env[name] = sp.lambdify(symbols, steps[name], "numpy")(*(env[s.name] for s in symbols))
        if name == "e":
            env["s"] = env["e"].sum(axis=1, keepdims=True)
    softmax = np.exp(z1) / np.exp(z1).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(env["p"], softmax, rtol=1e-13)
    np.testing.assert_allclose(env["p"].sum(axis=1), 1.0, rtol=1e-13)

    logits = torch.tensor(z1, requires_grad=True)
    torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).backward()
    np.testing.assert_allclose(env["dz1"], logits.grad.numpy(), rtol=1e-12, atol=1e-15)


# -- size ------------------------------------------------------------------------------
def mlp(depth):
    layers = []
    for _ in range(depth):
        layers += [sy.Linear(8, 8), sy.Tanh()]
    return sy.Model(sy.Sequential(*layers), sy.MSELoss())


def test_rendered_size_grows_linearly_with_depth():
    lines = {depth: len(sy.Derivation(mlp(depth)).render("numpy").splitlines()) for depth in (4, 16)}
    assert lines[16] < 4.5 * lines[4], lines
