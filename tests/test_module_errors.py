"""Bad models written with the Module API: one line each, saying what is wrong and where (the line of forward)."""

from __future__ import annotations

import inspect

import pytest
import sympy as sp
import torch

import symprop as S
import symprop.functional as F


def line_of(fn, text: str) -> int:
    """The line number of `text` in fn's source."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


class Two(S.Module):
    def __init__(self, body):
        super().__init__()
        self.fc = S.Linear(6, 6)
        self.body = body

    def forward(self, x, u):
        return self.body(self, x, u)


def model_with(body, **kwargs):
    return S.Model(Two(body), S.MSELoss(), inputs={"x": 6, "u": 3}, name="bad", **kwargs)


def sort(self, x, u):
    return torch.sort(self.fc(x))[0] + u.sum()


def branch(self, x, u):
    h = self.fc(x)
    if h.sum() > 0:
        return h
    return h + u.sum()


def to_float(self, x, u):
    return self.fc(x) * float(u.sum())


def mismatch(self, x, u):
    return self.fc(x) + u


def a_lambda(self, x, u):
    return F.relu(lambda z: z) + u.sum() + self.fc(x)


def numpy_function(self, x, u):
    import numpy as np

    return np.tanh(self.fc(x)) + u.sum()


def wrong_width(self, x, u):
    return self.fc(u) + x


def returns_none(self, x, u):
    self.fc(x) + u.sum()


CASES = {
    "torch.sort": (sort, "torch.sort(", "torch.sort is not supported by symprop"),
    "python if": (branch, "if h.sum() > 0", "comparisons of symbolic values are not differentiable"),
    "float()": (to_float, "float(u.sum())", "float() of a symbolic tensor"),
    "shape mismatch": (mismatch, "self.fc(x) + u", "+: shapes (N, 6) and (N, 3) do not broadcast"),
    "a lambda": (a_lambda, "F.relu(lambda", "F.relu expects a tensor, got a lambda"),
    "numpy function": (numpy_function, "np.tanh", "numpy.tanh is not supported by symprop"),
    "wrong width": (wrong_width, "self.fc(u)", "Linear expects 6 inputs, but what flows in has shape (N, 3)"),
}


@pytest.mark.parametrize("case", CASES)
def test_unsupported_operations_name_the_line_of_forward(case):
    body, text, message = CASES[case]
    with pytest.raises(S.SymPropError) as error:
        model_with(body)
    said = str(error.value)
    assert "\n" not in said and message in said, said
    assert said.startswith(f"{body.__name__} ({__name__.split('.')[-1]}.py:{line_of(body, text)}): "), said


def test_a_python_if_on_a_value_itself_is_refused():
    class Branch(S.Module):
        def __init__(self):
            super().__init__()
            self.fc = S.Linear(2, 2)

        def forward(self, x):
            h = self.fc(x)
            return h if h else -h

    with pytest.raises(S.SymPropError, match=r"forward \(test_module_errors.py:\d+\): a Python if"):
        S.Model(Branch(), S.MSELoss(), inputs=2)


def test_forward_that_returns_no_tensor():
    with pytest.raises(S.SymPropError, match="forward: forward returned None, not a tensor"):
        model_with(returns_none)


def test_unused_input_and_parameter():
    class UnusedInput(S.Module):
        def __init__(self):
            super().__init__()
            self.fc = S.Linear(6, 1)

        def forward(self, x, u):
            return self.fc(x)

    with pytest.raises(S.SymPropError, match="inputs: input u is never used in forward"):
        S.Model(UnusedInput(), S.MSELoss(), inputs={"x": 6, "u": 3})

    class UnusedParameter(S.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.spare = S.Linear(6, 1), S.Linear(6, 1)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(S.SymPropError, match="parameter spare.weight is never used in forward or the loss"):
        S.Model(UnusedParameter(), S.MSELoss(), inputs=6)


def test_loss_errors_name_the_loss_line():
    net = S.Sequential(S.Linear(3, 2))

    def loss(y, t):
        return F.mse_loss(y, t[:, :1])

    with pytest.raises(S.SymPropError) as error:
        S.Model(net, loss, inputs=3)
    assert str(error.value).startswith(f"loss (test_module_errors.py:{line_of(loss, 'F.mse_loss')}): "
                                       "F.mse_loss: target (N, 1) and input (N, 2) differ in shape"), error.value


def test_a_loss_that_is_not_a_number():
    with pytest.raises(S.SymPropError, match=r"loss: the loss must be a number, got shape \(N, 2\)"):
        S.Model(S.Sequential(S.Linear(3, 2)), lambda y, t: (y - t) ** 2, inputs=3)


def test_a_parameter_outside_the_model():
    stray = S.Parameter((2,))
    with pytest.raises(S.SymPropError, match="this Parameter is not an attribute of the model"):
        S.Model(S.Sequential(S.Linear(3, 2)), lambda y, t: F.mse_loss(y * stray, t), inputs=3)


def test_a_user_error_in_forward_is_one_line_at_its_line():
    class Typo(S.Module):
        def __init__(self):
            super().__init__()
            self.fc = S.Linear(2, 2)

        def forward(self, x):
            return self.fcc(x)

    with pytest.raises(S.SymPropError) as error:
        S.Model(Typo(), S.MSELoss(), inputs=2)
    assert str(error.value).startswith(f"forward (test_module_errors.py:{line_of(Typo.forward, 'fcc')}): "
                                       "AttributeError: "), error.value


@pytest.mark.parametrize("expr", [sp.Piecewise((sp.Symbol("z"), sp.Symbol("z") > 0), (0, True)),
                                  sp.Heaviside(sp.Symbol("z")), sp.floor(sp.Symbol("z"))])
def test_sympy_objects_outside_the_vocabulary_are_refused_at_declaration(expr):
    with pytest.raises(S.SymPropError) as error:
        S.Elementwise(expr)
    assert "\n" not in str(error.value) and ("not allowed" in str(error.value) or "not differentiable" in
                                             str(error.value)), error.value
    with pytest.raises(S.SymPropError):
        S.ElementwiseLoss(expr.subs(sp.Symbol("z"), sp.Symbol("y")))


def test_sympy_objects_inside_the_vocabulary_work_end_to_end():
    z = sp.Symbol("z")
    model = S.Model(S.Sequential(S.Linear(3, 2), S.Elementwise(z * sp.tanh(z) + sp.Max(z, z / 10))),
                    S.MSELoss(), inputs=3, name="sympy_built")
    from symprop.check import compare
    from symprop.derivation import Derivation

    derivation = Derivation(model)
    modules = {}
    for backend in ("numpy", "torch"):
        namespace: dict = {}
        exec(compile(derivation.render(backend), f"<{backend}>", "exec"), namespace)  # noqa: S102
        modules[backend] = type("Module", (), {k: staticmethod(v) if callable(v) else v
                                               for k, v in namespace.items()})
    assert all(row.passed for row in compare(model, modules, seeds=(0,), batches=(3,)))


def test_inputs_are_validated():
    with pytest.raises(S.SymPropError, match="'t' cannot name an input"):
        S.Model(S.Sequential(S.Linear(3, 1)), S.MSELoss(), inputs={"t": 3})
    with pytest.raises(S.SymPropError, match="inputs.x: must be a positive integer"):
        S.Model(S.Sequential(S.Linear(3, 1)), S.MSELoss(), inputs={"x": 0})


def test_a_forward_past_the_derivation_budget_is_refused():
    class Loop(S.Module):
        def __init__(self):
            super().__init__()
            self.fc = S.Linear(2, 2)

        def forward(self, x):
            for _ in range(2000):
                x = self.fc(x)
            return x

    with pytest.raises(S.SymPropError, match="more than 1000 tensors"):
        S.Model(Loop(), S.MSELoss(), inputs=2)
