"""TOML's graph form, and every committed example's code against torch.autograd (what `symprop check` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GOLDEN, import_path

import symprop as S
from symprop.check import compare
from symprop.declare.spec import loads

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_committed_code_of_every_example_passes_check(example):
    model = S.load_spec(example)
    modules = {backend: import_path(GOLDEN / f"{model.name}_{backend}.py", f"golden_{model.name}_{backend}")
               for backend in ("numpy", "torch")}
    rows = compare(model, modules, seeds=(0,), batches=(1, 5))
    assert all(row.passed for row in rows), [(row.name, row.error) for row in rows if not row.passed]


def test_graph_examples_have_the_declared_names():
    residual = S.load_spec(ROOT / "examples" / "residual_mlp.toml")
    assert list(residual.parameters) == ["fc1.weight", "fc1.bias", "out.weight", "out.bias"]
    two = S.load_spec(ROOT / "examples" / "two_inputs.toml")
    assert two.input_shapes == {"x": ("batch", 6), "u": ("batch", 3)}
    assert list(two.parameters) == ["ex.weight", "ex.bias", "eu.weight", "eu.bias", "head.weight", "head.bias"]


HEAD = 'name = "g"\ninputs = 4\n'
LINEAR = '[[layers]]\nname = "a"\ntype = "linear"\noutputs = 4\n'
MSE = '[loss]\ntype = "mse"\n'
BAD = {
    "add names nothing": (LINEAR + '[[layers]]\ntype = "relu"\nadd = "b"\n', "layers[1].add: 'b' names no input"),
    "use of no layer": ('[[layers]]\nuse = "a"\n', "layers[0].use: no layer named 'a' before this one"),
    "use with type": (LINEAR + '[[layers]]\nuse = "a"\ntype = "relu"\n', "layers[1].type: type does not go with use"),
    "name taken": (LINEAR + '[[layers]]\nname = "x"\ntype = "relu"\n', "layers[1].name: 'x' is taken"),
    "cat of one": (LINEAR + '[[layers]]\ntype = "cat"\ninputs = ["a"]\n', "layers[1].inputs: name at least two"),
    "inputs on a layer": (LINEAR + '[[layers]]\ntype = "relu"\ninputs = ["a", "x"]\nname = "r"\n',
                          "layers[1].inputs: inputs goes with add or cat layers only; relu takes no keys but type"),
    "add of other widths": ('[[layers]]\nname = "a"\ntype = "linear"\noutputs = 3\nadd = "x"\n',
                            "layers[0]: +: shapes (N, 3) and (N, 4) do not broadcast"),
    "l2 of no parameter": (LINEAR, "loss.l2.b.weight: no parameter 'b.weight'"),
    "input of no name": ('[[layers]]\ntype = "linear"\ninput = "u"\noutputs = 2\n', "layers[0].input: 'u' names"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_graph_errors_name_the_key(case):
    layers, message = BAD[case]
    loss = MSE + ('l2 = { "b.weight" = 0.1 }\n' if "l2" in case else "")
    with pytest.raises(S.SymPropError) as error:
        loads(HEAD + layers + loss)
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_inputs_table_and_a_tied_layer():
    model = loads('name = "g"\n[inputs]\nx = 2\nu = 2\n' + '[[layers]]\nname = "a"\ntype = "linear"\noutputs = 2\n'
                  '[[layers]]\nuse = "a"\ninput = "u"\nadd = "a"\n' + MSE)
    assert list(model.parameters) == ["a.weight", "a.bias"]
    assert list(model.input_shapes) == ["x", "u"]
