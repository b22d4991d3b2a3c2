"""What a new user hit, each mended: optimizers as torch has them, input checks, stale code, names, the CLI's
edges and symprop train's. Each test here failed before its fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import generated_modules

import symprop as S
from symprop.cli import main

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "examples" / "data" / "iris.csv"
SYMPROP = [str(Path(sys.executable).parent / "symprop")]  # the console script, as a user runs it


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def generated(spec: str, tmp_path):
    model = S.load_spec(ROOT / "examples" / spec)
    return model, generated_modules(model, tmp_path)


# -- optimizers -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["iris_mlp.toml", "transformer_classifier.toml"])
@pytest.mark.parametrize("optimizer,options", [("adam", {}), ("adamw", {}), ("adam", {"amsgrad": True,
                                                                                      "weight_decay": 0.05})],
                         ids=["adam", "adamw", "adam-amsgrad-decay"])
def test_100_steps_follow_torch_optim(spec, optimizer, options, tmp_path):
    from symprop.check import reference

    model, modules = generated(spec, tmp_path)
    generator = torch.Generator().manual_seed(0)
    start = {k: torch.randn(v, generator=generator, dtype=torch.float64) * 0.3 for k, v in model.parameters.items()}
    x = torch.randn(8, *model.input_shape[1:], generator=generator, dtype=torch.float64)
    t = torch.randint(0, model.outputs, (8,), generator=generator)
    leaves = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    torch_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer]
    theirs = torch_class(leaves.values(), lr=1e-2, **options)
    ours = {"numpy": ({k: v.numpy().copy() for k, v in start.items()}, None),
            "torch": ({k: v.clone() for k, v in start.items()}, None)}
    for _ in range(100):
        for backend, (params, state) in ours.items():
            module, args = modules[backend], ((x.numpy(), t.numpy()) if backend == "numpy" else (x, t))
            params, _, state = getattr(module, f"{optimizer}_step")(params, *args, lr=1e-2, state=state, **options)
            ours[backend] = (params, state)
        theirs.zero_grad()
        _, grads = reference(model, {k: v.detach() for k, v in leaves.items()}, {"x": x}, t)
        for key, leaf in leaves.items():
            leaf.grad = grads[key]
        theirs.step()
    for backend, (params, _) in ours.items():
        for key, leaf in leaves.items():
            value = torch.as_tensor(np.asarray(params[key]))
            assert (value - leaf.detach()).abs().max() <= 1e-9 * leaf.abs().max(), (backend, key)


def test_init_params_takes_a_dtype(tmp_path):
    _, modules = generated("iris_mlp.toml", tmp_path)
    assert all(v.dtype == np.float32 for v in modules["numpy"].init_params(0, dtype=np.float32).values())
    assert all(v.dtype == torch.float32 for v in modules["torch"].init_params(0, dtype=torch.float32).values())


# -- input checks -----------------------------------------------------------------------------------------------
def test_generated_code_checks_shapes_and_kinds(tmp_path):
    _, modules = generated("regression.toml", tmp_path)
    numpy_module = modules["numpy"]
    params, x = numpy_module.init_params(), np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"t has shape \(5,\); expected \(None, 1\)"):
        numpy_module.loss(params, x, np.zeros(5))  # torch would broadcast this to (5, 5) and warn
    with pytest.raises(ValueError, match=r"x has shape \(5, 3\); expected \(None, 4\)"):
        numpy_module.forward(params, np.zeros((5, 3)))
    _, modules = generated("iris_classifier.toml", tmp_path / "iris")
    with pytest.raises(ValueError, match="t holds class indices, so its dtype must be an integer one"):
        modules["torch"].loss_and_gradients(modules["torch"].init_params(), torch.zeros(2, 4, dtype=torch.float64),
                                            torch.zeros(2, dtype=torch.float64))


# -- stale code -----------------------------------------------------------------------------------------------
def test_check_names_stale_code(tmp_path):
    spec = tmp_path / "tiny.toml"
    text = 'name = "tiny"\ninputs = 3\n[[layers]]\ntype = "linear"\noutputs = 2\n[loss]\ntype = "mse"\n'
    spec.write_text(text)
    assert run("derive", str(spec), "--out", str(tmp_path / "gen"))[0] == 0
    assert run("check", str(spec), "--out", str(tmp_path / "gen"))[0] == 0
    spec.write_text(text.replace("outputs = 2", "outputs = 3"))
    code, _, err = run("check", str(spec), "--out", str(tmp_path / "gen"))
    assert code == 2 and err.count("\n") == 1
    assert "tiny_numpy.py: was derived from a different spec; run symprop derive" in err, err


# -- names ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,message", [("n" * 300, "is 300 characters long; the limit is 100"),
                                          ("\ufb01le", "reads as 'file' once Python normalizes it"),
                                          ("class", "must be a Python identifier")])
def test_names_that_cannot_name_a_file_or_module(name, message):
    with pytest.raises(S.SymPropError, match=message):
        S.Model(S.Sequential(S.Linear(2, 1)), S.MSELoss(), name=name)


def test_a_constant_that_is_not_real_is_one_line(tmp_path):
    spec = tmp_path / "cos.toml"
    spec.write_text('name = "m"\ninputs = 2\nlayers = [{type = "linear", outputs = 1}, {type = "elementwise", '
                    'expr = "cos(99999999999999999999)**Abs(z)"}]\nloss = {type = "mse"}\n')
    code, _, err = run("derive", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and "must be positive" in err, err


def test_a_model_without_parameters_is_refused():
    with pytest.raises(S.SymPropError, match="the model has no parameters"):
        S.Model(S.Sequential(S.Tanh()), S.MSELoss(), inputs=3)


# -- the CLI ----------------------------------------------------------------------------------------------------
def test_expr_with_target_latex_writes_the_tex(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("derive", "--expr", "(a(w*x) - t)**2", "--wrt", "w", "--target", "latex")
    assert code == 0 and (tmp_path / "generated" / "chain_rule.tex").exists(), out


def test_unknown_keys_name_the_types_own_and_the_nearest(tmp_path):
    spec = tmp_path / "typo.toml"
    spec.write_text('name = "m"\ninputs = 2\n[[layers]]\ntype = "linear"\noutput = 2\n[loss]\ntype = "mse"\n')
    code, _, err = run("derive", str(spec))
    assert code == 2 and "layers[0].output: unknown key (did you mean outputs?); linear takes outputs, bias" in err
    spec.write_text('name = "m"\ninputs = 2\n[[layers]]\ntype = "lnear"\noutputs = 2\n[loss]\ntype = "mse"\n')
    code, _, err = run("derive", str(spec))
    assert code == 2 and "unknown layer type 'lnear' (did you mean linear?)" in err, err


def test_spec_files_are_capped(tmp_path):
    code, _, err = run("derive", "/dev/zero")
    assert code == 2 and "is larger than 1000 kB" in err


def test_every_command_has_examples_and_whole_summaries():
    code, out, _ = run("--help")
    assert code == 0 and "..." not in out.split("Commands:")[1].split("Examples")[0]
    for command in ("derive", "check", "train", "sample", "predict", "list-ops"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Examples:" in out and f"symprop {command}" in out.split("Examples:")[1], command


def test_bench_help_says_symprop_bench():
    """And what it writes: symprop_bench.json in the current folder, none for --quick (which wrote one anyway,
    where the help said none; issue 26, item 9)."""
    result = subprocess.run(SYMPROP + ["bench", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: symprop bench"), result.stdout[:200]
    assert "(default symprop_bench.json; --quick writes none unless given)" in " ".join(result.stdout.split())


def test_ctrl_c_exits_130_and_a_closed_stdout_exits_0(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text('name = "deep"\ninputs = 8\nsequence = 4\n' + '[[layers]]\ntype = "transformer_encoder"\n'
                    'nhead = 2\ndim_feedforward = 8\n' * 12 + '[loss]\ntype = "mse"\n')
    process = subprocess.Popen(SYMPROP + ["derive", str(ROOT / "examples" / "regression.toml"), str(deep),
                                          "--out", str(tmp_path / "out")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("wrote")  # the first is written: the deep one is deriving
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    read, write = os.pipe()
    os.close(read)  # the reader is gone before symprop writes a line
    result = subprocess.run(SYMPROP + ["list-ops"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write)
    assert result.returncode == 0 and result.stderr == "", result.stderr


# -- symprop train ------------------------------------------------------------------------------------------------
def test_a_csv_without_a_header_is_refused(tmp_path):
    data = tmp_path / "no_header.csv"
    data.write_text("".join(line for line in IRIS.read_text().splitlines(True)[1:]))
    code, _, err = run("train", str(ROOT / "examples" / "iris_classifier.toml"), "--data", str(data))
    assert code == 2 and "line 1 holds numbers, not column names" in err


def test_a_csv_for_an_image_model_and_a_kernel_larger_than_the_image_say_what_is_wrong(tmp_path):
    code, _, err = run("train", str(ROOT / "examples" / "digits_cnn.toml"), "--data", str(IRIS), "--out",
                       str(tmp_path))
    assert code == 2 and "this model takes arrays of shape (1, " in err and "an .npz with x and labels" in err
    spec = tmp_path / "big_kernel.toml"
    spec.write_text('name = "big_kernel"\ninputs = [1, 4, 4]\n'
                    '[[layers]]\ntype = "conv2d"\nout_channels = 2\nkernel_size = 5\n'
                    '[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "linear"\noutputs = 2\n'
                    '[loss]\ntype = "cross_entropy"\n')
    code, _, err = run("derive", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and "big_kernel.toml: layers[0]: Conv2d(1, 2, kernel_size=(5, 5)) makes an output" in err
    assert "does not fit" in err and not (tmp_path / "out").exists()


def test_class_names_are_mapped_saved_printed_and_predicted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["setosa", "versicolor", "virginica"]
    lines = IRIS.read_text().splitlines()
    rows = [lines[0]] + [",".join(line.split(",")[:-1] + [names[int(float(line.split(",")[-1]))]])
                         for line in lines[1:]]
    (tmp_path / "named.csv").write_text("\n".join(rows) + "\n")
    spec = str(ROOT / "examples" / "iris_classifier.toml")
    code, out, err = run("train", spec, "--data", "named.csv", "--epochs", "60", "--weight-decay", "1e-4")
    assert code == 0, err
    assert "classes: 0 = setosa, 1 = versicolor, 2 = virginica" in out
    saved = np.load(tmp_path / "trained" / "iris_classifier_params.npz")
    assert list(saved["classes"]) == names
    code, out, err = run("predict", spec, "--data", "named.csv")
    assert code == 0, err
    predicted = out.splitlines()
    assert predicted[0] == "class" and len(predicted) == len(rows)
    right = sum(p == r.split(",")[-1] for p, r in zip(predicted[1:], rows[1:], strict=True))
    assert right / (len(rows) - 1) > 0.9


def test_a_diverging_run_stops_with_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run("train", str(ROOT / "examples" / "iris_classifier.toml"), "--data", str(IRIS), "--lr",
                       "1e9", "--epochs", "50")
    assert code == 1 and "training diverged" in err and "smaller --lr" in err, err


def test_ctrl_c_during_training_saves_the_parameters(tmp_path):
    process = subprocess.Popen(SYMPROP + ["train", str(ROOT / "examples" / "iris_classifier.toml"), "--data",
                                          str(IRIS), "--epochs", "1000000", "--out", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("training iris_classifier")
    time.sleep(1.5)  # well into training: many epochs are done
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted; saved the parameters after epoch" in err and "Traceback" not in err, err
    assert np.load(tmp_path / "iris_classifier_params.npz")["0.weight"].shape == (8, 4)


@pytest.mark.parametrize("last,loss,word,function", [
    ("softmax", "cross_entropy", "softmax", "cross_entropy"),
    ("sigmoid", "bce_with_logits", "sigmoid", "binary_cross_entropy_with_logits")])
def test_a_function_applied_twice_is_warned_in_the_cli_and_the_document(last, loss, word, function, tmp_path):
    spec = tmp_path / "twice.toml"
    outputs = 3 if loss == "cross_entropy" else 1
    spec.write_text(f'name = "twice"\ninputs = 6\nlayers = [{{type = "linear", outputs = {outputs}}}, '
                    f'{{type = "{last}"}}]\nloss = {{type = "{loss}"}}\n')
    code, _, err = run("derive", str(spec), "--out", str(tmp_path / "out"))
    assert code == 0 and f"warning: {spec}: the network ends in a {word}, and {function} applies one again" in err
    assert "Warning:" in (tmp_path / "out" / "twice.tex").read_text()
    code, _, err = run("derive", str(ROOT / "examples" / "iris_mlp.toml"), "--out", str(tmp_path / "iris"))
    assert code == 0 and "warning" not in err


def test_a_tensor_given_to_the_numpy_module_and_a_missing_key_get_one_line(tmp_path):
    """A torch tensor passed to the NumPy module, or params without a key, ended in NumPy's or Python's own error
    (issue 26, item 7); each now gets one line naming the argument or the key."""
    model = S.Model(S.Sequential(S.Linear(3, 2)), S.MSELoss(), name="arguments")
    numpy_module, torch_module = (generated_modules(model, tmp_path)[b] for b in ("numpy", "torch"))
    params = numpy_module.init_params()
    x, t = np.ones((4, 3)), np.ones((4, 2))
    with pytest.raises(TypeError, match=r"^x is a Tensor; this module takes NumPy arrays \(np.asarray\(x\)\)$"):
        numpy_module.loss_and_gradients(params, torch.ones(4, 3, dtype=torch.float64), t)
    with pytest.raises(TypeError, match=r"^t is a ndarray; this module takes torch tensors"):
        torch_module.loss_and_gradients(torch_module.init_params(), torch.ones(4, 3, dtype=torch.float64), t)
    with pytest.raises(ValueError, match=r"^params lacks '0.bias', of shape \(2,\)$"):
        numpy_module.loss_and_gradients({"0.weight": params["0.weight"]}, x, t)


def test_a_module_derived_in_python_names_the_script_that_makes_it(tmp_path):
    """Its header said "regenerate with symprop derive a model declared in Python" (issue 26, item 9)."""
    script = tmp_path / "declare.py"
    script.write_text("import symprop as S\n"
                      "model = S.Model(S.Sequential(S.Linear(3, 2)), S.MSELoss(), name='declared')\n"
                      "print(S.derive_network(model).render('numpy'))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.startswith("# Generated by symprop from a model declared in declare.py. Do not edit: "
                                    "regenerate with\n#     python declare.py\n"), result.stdout[:200]


def test_training_piped_prints_no_stray_progress_line(tmp_path):
    """Piped, click's progress bar printed its label alone: a line "epoch" (issue 26, item 9)."""
    result = subprocess.run(SYMPROP + ["train", str(ROOT / "examples" / "iris_mlp.toml"), "--data",
                                       str(ROOT / "examples" / "data" / "iris.csv"), "--epochs", "2", "--out",
                                       str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-500:]
    lines = (result.stdout + result.stderr).splitlines()
    assert "epoch" not in [line.strip() for line in lines] and any(line.startswith("final training loss")
                                                                     for line in lines), lines


def test_token_ids_out_of_range_are_refused_in_one_line():
    """NumPy read an id of -1 as the table's last row: a finite loss where torch's embedding raises."""
    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    try:
        import char_lm_numpy
        import char_lm_torch
    finally:
        sys.path.pop(0)
    x, t = np.zeros((2, 32), dtype=np.int64), np.zeros((2, 32), dtype=np.int64)
    x[1, 3] = -1
    with pytest.raises(ValueError, match=r"^x holds ids in \[0, 71\), got -1$"):
        char_lm_numpy.loss_and_gradients(char_lm_numpy.init_params(), x, t)
    x[1, 3] = 71
    with pytest.raises(ValueError, match=r"^x holds ids in \[0, 71\), got 71$"):
        char_lm_torch.loss_and_gradients(char_lm_torch.init_params(), torch.from_numpy(x), torch.from_numpy(t))
    x[1, 3] = 0  # ids of floats, or of booleans and bytes, which torch reads as masks
    for dtype in (np.float32, np.bool_, np.uint8):
        with pytest.raises(ValueError, match=r"^x holds ids, so its dtype must be an integer one .* got \w+$"):
            char_lm_numpy.loss_and_gradients(char_lm_numpy.init_params(), x.astype(dtype), t)
        with pytest.raises(ValueError, match=r"^x holds ids, so its dtype must be an integer one .* got torch\.\w+$"):
            char_lm_torch.loss_and_gradients(char_lm_torch.init_params(), torch.from_numpy(x.astype(dtype)),
                                             torch.from_numpy(t))
    empty = np.zeros((0, 32), dtype=np.int64)  # an empty batch: the loss torch gives, NaN (a mean over nothing)
    assert np.isnan(char_lm_numpy.loss_and_gradients(char_lm_numpy.init_params(), empty, empty)[0])


@pytest.mark.parametrize("args", [["derive"], ["derive", "examples/iris_mlp.toml", "--target", "bogus"], ["bogus"],
                                  ["train", "--epochs", "x", "examples/iris_mlp.toml"]])
def test_a_usage_error_is_one_line_and_exits_2(args):
    """click printed four lines (Usage, Try, a blank, Error); the standard is one line naming what is wrong."""
    result = subprocess.run(SYMPROP + args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == "", (result.returncode, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0] and "--help)" in lines[0], lines


def test_two_factories_of_one_file_write_files_of_their_own(tmp_path):
    """Both were named after the file (models_*.py): the second overwrote the first's."""
    (tmp_path / "models.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n    return nn.Linear(3, 2).double(), nn.MSELoss(), (torch.randn(4, 3).double(),), "
        "torch.randn(4, 2).double()\n\n"
        "def small():\n    return nn.Linear(3, 1).double(), nn.MSELoss(), (torch.randn(4, 3).double(),), "
        "torch.randn(4, 1).double()\n")
    result = subprocess.run(SYMPROP + ["derive", "models.py:build", "models.py:small", "--target", "numpy", "--out",
                                       "out"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-800:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["models_numpy.py", "models_small_numpy.py"]


def test_a_specs_cross_entropy_takes_label_smoothing(tmp_path):
    spec = tmp_path / "smoothed.toml"
    spec.write_text('name = "smoothed"\ninputs = 4\n[[layers]]\ntype = "linear"\noutputs = 3\n'
                    '[loss]\ntype = "cross_entropy"\nlabel_smoothing = 0.1\n')
    assert run("derive", str(spec), "--out", str(tmp_path / "out"))[0] == 0
    assert "CrossEntropyLoss(label_smoothing=0.1)" in (tmp_path / "out" / "smoothed_numpy.py").read_text()
    code, out, err = run("check", str(spec), "--out", str(tmp_path / "out"))
    assert code == 0 and "all 6 agree with torch.autograd" in out, err
    spec.write_text(spec.read_text().replace("0.1", "1.5"))
    code, _, err = run("derive", str(spec), "--out", str(tmp_path / "bad"))
    assert code == 2 and "loss.label_smoothing: must be a number in [0, 1], got 1.5" in err
