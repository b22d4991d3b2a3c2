"""The Transformer encoder layer, derived: generated modules against torch's own nn.TransformerEncoderLayer.

The reference is built here from torch.nn alone (dropout 0, batch_first): the real encoder layer, called
with the causal mask from nn.Transformer.generate_square_subsequent_mask and is_causal=True when causal,
a mean over the sequence, nn.Linear, torch's loss, and loss.backward().
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

import symprop as sy

TOLERANCE = 1e-9  # relative, float64
WIDTH, FEEDFORWARD, CLASSES = 8, 16, 3


class Encoder(nn.TransformerEncoderLayer):
    def __init__(self, nhead, activation, norm_first, causal, width=WIDTH, feedforward=FEEDFORWARD):
        super().__init__(width, nhead, feedforward, dropout=0.0, activation=activation, batch_first=True,
                         norm_first=norm_first)
        self.causal = causal

    def forward(self, src):
        if not self.causal:
            return super().forward(src)
        mask = nn.Transformer.generate_square_subsequent_mask(src.shape[1], dtype=src.dtype)
        return super().forward(src, src_mask=mask, is_causal=True)


class MeanPool(nn.Module):
    def forward(self, z):
        return z.mean(dim=1)


def reference(config, params, x, t):
    nhead, activation, norm_first, causal = config
    net = nn.Sequential(Encoder(nhead, activation, norm_first, causal), MeanPool(), nn.Linear(WIDTH, CLASSES))
    net = net.double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    loss = nn.CrossEntropyLoss()(net(torch.from_numpy(x)), torch.from_numpy(t))
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in net.named_parameters()}


def relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


CONFIGS = list(itertools.product((1, 2, 4), ("relu", "gelu"), (False, True), (False, True)))


@pytest.mark.parametrize("sequence", (1, 7))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"nhead{c[0]}-{c[1]}-{'pre' if c[2] else 'post'}norm-"
                                                        f"{'causal' if c[3] else 'full'}")
def test_encoder_layer_matches_torch(build, config, sequence):
    check_against_torch(build, config, sequence)


@pytest.mark.parametrize("config", [(4, "gelu", True, True), (4, "relu", False, False)], ids=("causal", "full"))
def test_attention_probabilities_computed_again_in_the_backward_pass_match_torch(build, config):
    """With 9 positions and heads of width 2, the probabilities (9 per query) are 4.5 times the queries and keys
    they come from: the backward pass computes them again, from those and the row max and sum (NumPy) or by
    one softmax call (torch), instead of keeping them from the forward pass."""
    import inspect

    numpy_module, torch_module = check_against_torch(build, config, 9)
    numpy_code = inspect.getsource(numpy_module.loss_and_gradients)
    again = numpy_code.index("# a0 again")  # made again under its own name, with a comment that says why
    assert "shifted_a0 -= m_a0" in numpy_code[again:] and "a0 /= s_a0" in numpy_code[again:]
    torch_code = inspect.getsource(torch_module.loss_and_gradients)
    assert torch_code.count("a0 = torch.softmax(scores0, dim=-1, out=scores0)") == 2
    # 1/√d scales the queries (N·S·D/H numbers), not the scores (N·H·S²), and the mask is added in place
    assert re.search(r"scores0 = \([0-9.]+ \* qh0\) @ kh0_c\.mT", torch_code)  # k, copied once by head
    assert ("scores0 += mask0" in torch_code) == config[3]


def check_against_torch(build, config, sequence):
    """Both generated modules against torch's encoder layer, in float64; returns the modules."""
    nhead, activation, norm_first, causal = config
    layer = sy.TransformerEncoderLayer(WIDTH, nhead, FEEDFORWARD, activation, norm_first, causal)
    model = sy.Model(sy.Sequential(layer, sy.MeanPool(), sy.Linear(WIDTH, CLASSES)), sy.CrossEntropyLoss(),
                     name=f"enc_{nhead}_{activation}_{int(norm_first)}_{int(causal)}_{sequence}", sequence=sequence)
    numpy_module, torch_module = build(model)
    rng = np.random.default_rng(nhead * 100 + sequence)
    params = {k: rng.standard_normal(shape) * 0.5 for k, shape in numpy_module.PARAM_SHAPES.items()}
    for batch in (1, 5):
        x = rng.standard_normal((batch, sequence, WIDTH))
        t = rng.integers(0, CLASSES, batch)
        want_loss, want = reference(config, params, x, t)
        loss, grads = numpy_module.loss_and_gradients(params, x, t)
        torch_loss, torch_grads = torch_module.loss_and_gradients(
            {k: torch.from_numpy(v) for k, v in params.items()}, torch.from_numpy(x), torch.from_numpy(t))
        assert set(grads) == set(want) == set(torch_grads)
        assert relative(loss, want_loss) <= TOLERANCE
        assert relative(torch_loss.item(), want_loss) <= TOLERANCE
        for key in want:
            assert relative(grads[key], want[key]) <= TOLERANCE, (key, "numpy", batch)
            assert relative(torch_grads[key].numpy(), want[key]) <= TOLERANCE, (key, "torch", batch)
    return numpy_module, torch_module


def test_state_dict_loads_both_ways(build):
    layer = sy.TransformerEncoderLayer(WIDTH, 2, FEEDFORWARD, "gelu", True, True)
    model = sy.Model(sy.Sequential(layer, sy.MeanPool(), sy.Linear(WIDTH, CLASSES)), sy.CrossEntropyLoss(),
                     name="enc_state", sequence=4)
    numpy_module, torch_module = build(model)
    net = nn.Sequential(Encoder(2, "gelu", True, True), MeanPool(), nn.Linear(WIDTH, CLASSES)).double()
    theirs = net.state_dict()
    assert list(numpy_module.PARAM_SHAPES) == list(theirs)
    assert all(tuple(theirs[k].shape) == shape for k, shape in numpy_module.PARAM_SHAPES.items())
    net.load_state_dict(torch_module.init_params(0))  # ours into torch
    x = torch.randn(3, 4, WIDTH, dtype=torch.float64)
    ours = torch_module.forward({k: v.detach() for k, v in net.state_dict().items()}, x)  # torch's into ours
    assert torch.allclose(ours, net(x), rtol=1e-12, atol=1e-12)


def test_numpy_erf_is_exact_to_float64():
    model = sy.Model(sy.Sequential(sy.Linear(1, 1), sy.GELU()), sy.MSELoss(), name="gelu_erf")
    source = sy.Derivation(model).render("numpy")
    namespace: dict = {}
    exec(compile(source, "gelu_erf_numpy.py", "exec"), namespace)  # our own generated text, not user input
    erf = namespace["erf"]
    xs = np.concatenate([np.linspace(-8, 8, 40001), [0.0, -0.0, 3.0, -3.0, 1e-300, 40.0, -1e300]])
    want = np.array([math.erf(v) for v in xs])
    assert np.max(np.abs(erf(xs) - want) / np.maximum(np.abs(want), 1e-300)) < 5e-15
    single = xs[:40001].astype(np.float32)  # float32: Abramowitz and Stegun's 7.1.26, within float32's rounding
    assert erf(single).dtype == np.float32
    assert np.max(np.abs(erf(single) - np.array([math.erf(v) for v in single.astype(np.float64)]))) < 1e-6
    assert list(erf(np.array([0.0, -0.0, np.inf, -np.inf], np.float32))) == [0.0, -0.0, 1.0, -1.0]


HEAD = 'name = "t"\ninputs = 8\n'
MSE = '[loss]\ntype = "mse"\n'


@pytest.mark.parametrize("text, where, message", [
    (HEAD + '[[layers]]\ntype = "transformer_encoder"\nnhead = 2\n' + MSE, "layers[0]", "set sequence"),
    (HEAD + 'sequence = 4\n[[layers]]\ntype = "transformer_encoder"\nnhead = 3\n' + MSE,
     "layers[0].nhead", "not divisible"),
    (HEAD + 'sequence = 4\n[[layers]]\ntype = "transformer_encoder"\nnhead = 2\nactivation = "swish"\n' + MSE,
     "layers[0].activation", "must be"),
    (HEAD + 'sequence = 4\n[[layers]]\ntype = "mean_pool"\nnhead = 2\n' + MSE,
     "layers[0].nhead", "transformer_encoder layers only"),
    (HEAD + 'sequence = 4\n[[layers]]\ntype = "layer_norm"\neps = 2\n' + MSE, "layers[0].eps", "between 0 and 1"),
    (HEAD + 'sequence = 0\n[[layers]]\ntype = "linear"\noutputs = 3\n' + MSE, "sequence", "positive integer"),
])
def test_spec_errors_name_the_key(text, where, message):
    with pytest.raises(sy.SymPropError) as error:
        sy.declare.spec.loads(text, source="t.toml")
    assert where in str(error.value) and message in str(error.value)


def example_reference(spec: dict):
    """nn.Sequential and loss for an examples/transformer_*.toml, built from the TOML by torch alone."""
    modules, width = [], spec["inputs"]
    for layer in spec["layers"]:
        if layer["type"] == "transformer_encoder":
            modules.append(Encoder(layer["nhead"], layer.get("activation", "relu"), layer.get("norm_first", False),
                                   layer.get("causal", False), width, layer["dim_feedforward"]))
        elif layer["type"] == "mean_pool":
            modules.append(MeanPool())
        else:
            modules.append(nn.Linear(width, layer["outputs"]))
            width = layer["outputs"]
    loss = {"cross_entropy": nn.CrossEntropyLoss(), "mse": nn.MSELoss()}[spec["loss"]["type"]]
    return nn.Sequential(*modules).double(), loss


@pytest.mark.parametrize("name", ("transformer_classifier", "transformer_regression"))
def test_examples_match_torch(name):
    import importlib.util
    import tomllib
    from pathlib import Path

    from conftest import GOLDEN

    root = Path(__file__).resolve().parents[1]
    spec = tomllib.loads((root / "examples" / f"{name}.toml").read_text())
    net, loss_fn = example_reference(spec)
    modules = {}
    for target in ("numpy", "torch"):
        path = GOLDEN / f"{name}_{target}.py"
        module_spec = importlib.util.spec_from_file_location(f"{name}_{target}_check", path)
        modules[target] = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(modules[target])
    rng = np.random.default_rng(7)
    params = {k: rng.standard_normal(tuple(v.shape)) * 0.5 for k, v in net.state_dict().items()}
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    for batch in (1, 5):
        x = rng.standard_normal((batch, spec["sequence"], spec["inputs"]))
        y = net(torch.from_numpy(x))
        t = rng.integers(0, y.shape[-1], batch) if spec["loss"]["type"] == "cross_entropy" else \
            rng.standard_normal(tuple(y.shape))
        net.zero_grad()
        want = loss_fn(y, torch.from_numpy(t))
        want.backward()
        for target, module in modules.items():
            wrap = torch.from_numpy if target == "torch" else (lambda a: a)
            loss, grads = module.loss_and_gradients({k: wrap(v) for k, v in params.items()}, wrap(x), wrap(t))
            assert relative(float(loss), want.item()) <= TOLERANCE, target
            for key, p in net.named_parameters():
                got = grads[key].numpy() if target == "torch" else grads[key]
                assert relative(got, p.grad.numpy()) <= TOLERANCE, (target, key, batch)


def test_deep_stacks_stay_fast_and_are_capped():
    import time

    layer = sy.TransformerEncoderLayer(WIDTH, 2, FEEDFORWARD, "gelu", True, True)
    start = time.perf_counter()
    derivation = sy.Derivation(sy.Model(sy.Sequential(*[layer] * 4), sy.MSELoss(), name="deep_enc", sequence=3))
    derivation.render("numpy")
    derivation.render("latex")  # its closed forms "in full" double with each residual: cut short, not built
    assert time.perf_counter() - start < 10
    with pytest.raises(sy.SymPropError, match="17 transformer_encoder layers"):
        sy.Model(sy.Sequential(*[layer] * 17), sy.MSELoss(), sequence=3)


def test_train_cli_says_sequence_models_are_trained_from_python(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from symprop.cli import main

    root = Path(__file__).resolve().parents[1]
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1\n")
    result = CliRunner().invoke(main, ["train", str(root / "examples" / "transformer_classifier.toml"),
                                       "--data", str(data)])
    assert result.exit_code == 2 and "sequence model" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("example", ["gpt", "char_lm", "transformer_classifier"])
def test_attention_products_read_head_split_operands_copied_once(example):
    """torch.matmul copies an operand whose batch axes it cannot merge into one (q, k and v split by head: views of a
    (batch, position, head, width) array) at every product that reads it. The torch module copies each once, into the
    product's order of axes, and every product reads the copy; NumPy's matmul reads the views as they are."""
    from conftest import GOLDEN

    torch_code = (GOLDEN / f"{example}_torch.py").read_text()
    body = torch_code[torch_code.index("def loss_and_gradients"):]
    copies = re.findall(r"^    (\w+_c) = (\w+)(?:\.permute\([\d, ]+\))?\.contiguous\(\)$", body, re.M)
    assert len(copies) >= 4 and len({name for name, _ in copies}) == len(copies), copies
    view = "|".join(re.escape(view) for _, view in copies)
    operand = re.compile(rf"\b({view})(\.mT|\.permute\([\d, ]+\))? @|@ ({view})\b(?!_c)")
    assert not [line for line in body.splitlines() if operand.search(line)]
    assert "contiguous" not in (GOLDEN / f"{example}_numpy.py").read_text()
