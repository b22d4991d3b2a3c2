"""Training: the generated sgd_step follows torch.optim.SGD step for step, and `symprop train` learns Iris."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import symprop as sy
from symprop.cli import main

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "examples" / "data" / "iris.csv"

MODELS = {
    "classifier": (sy.Model(sy.Sequential(sy.Linear(6, 4), sy.Linear(4, 3)), sy.CrossEntropyLoss(), name="clf"),
                   lambda: torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 3)),
                   torch.nn.CrossEntropyLoss()),
    "regressor": (sy.Model(sy.Sequential(sy.Linear(4, 2), sy.Linear(2, 1)), sy.MSELoss(), name="reg"),
                  lambda: torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 1)), torch.nn.MSELoss()),
    "bce": (sy.Model(sy.Sequential(sy.Linear(6, 4), sy.Linear(4, 1), sy.Sigmoid()), sy.BCELoss(), name="bce"),
            lambda: torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 1), torch.nn.Sigmoid()),
            torch.nn.BCELoss()),
}


def batches(name, model, steps, generator):
    for _ in range(steps):
        x = torch.randn(8, model.inputs, generator=generator, dtype=torch.float64)
        if name == "classifier":
            yield x, torch.randint(0, 3, (8,), generator=generator)
        elif name == "bce":
            yield x, torch.rand(8, 1, generator=generator, dtype=torch.float64).round()
        else:
            yield x, x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(8, 1, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01)])
def test_100_sgd_steps_follow_torch(build, name, momentum, weight_decay):
    model, make_net, criterion = MODELS[name]
    numpy_module, torch_module = build(model)
    torch.manual_seed(0)
    net = make_net().double()
    ours_numpy = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    ours_torch = {k: v.detach().clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay)
    state_numpy = state_torch = None
    for x, t in batches(name, model, 100, torch.Generator().manual_seed(1)):
        optimizer.zero_grad()
        loss = criterion(net(x), t)
        loss.backward()
        optimizer.step()
        ours_numpy, loss_numpy, state_numpy = numpy_module.sgd_step(ours_numpy, x.numpy(), t.numpy(), 0.05, momentum,
                                                                    weight_decay, state_numpy)
        ours_torch, loss_torch, state_torch = torch_module.sgd_step(ours_torch, x, t, 0.05, momentum, weight_decay,
                                                                    state_torch)
        assert abs(loss_numpy - loss.item()) <= 1e-9 * abs(loss.item())
    for key, value in net.state_dict().items():
        scale = value.abs().max().item()
        assert np.abs(ours_numpy[key] - value.numpy()).max() <= 1e-9 * scale, key
        assert (ours_torch[key] - value).abs().max().item() <= 1e-9 * scale, key


def test_train_batches_as_a_dataloader_does(build):
    """Without shuffling, an epoch is the consecutive batches of DataLoader, the last one short."""
    numpy_module, _ = build(MODELS["regressor"][0])
    seen = []
    real_step = numpy_module.sgd_step
    numpy_module.sgd_step = lambda params, x, t, *rest, **options: (seen.append(len(x)),
                                                                    real_step(params, x, t, *rest, **options))[1]
    x, t = np.random.default_rng(0).normal(size=(10, 4)), np.zeros((10, 1))
    params, history = numpy_module.train(numpy_module.init_params(), x, t, lr=0.1, epochs=2, batch_size=4,
                                         shuffle=False)
    assert seen == [4, 4, 2, 4, 4, 2] and len(history) == 2


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_symprop_train_learns_iris(tmp_path):
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "iris_classifier.toml"), "--data", str(IRIS),
                                       "--epochs", "100", "--lr", "0.1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    training = float(result.stdout.split("training accuracy ")[1].split(";")[0])
    held_out = float(result.stdout.split("held-out accuracy ")[1].split(" ")[0])
    assert training >= 0.95 and held_out >= 0.9, result.stdout
    params = np.load(tmp_path / "iris_classifier_params.npz")
    assert params["0.weight"].shape == (8, 4) and params["x_mean"].shape == (4,)
    width, height = png_size(tmp_path / "iris_classifier_loss.png")
    assert width > 300 and height > 200


def test_symprop_train_learns_the_digits_with_lenet(tmp_path):
    """LeNet-5 (examples/lenet.py, from torch) trained by its generated NumPy module on examples/data/digits.npz."""
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "lenet.py") + ":build", "--data",
                                       str(ROOT / "examples" / "data" / "digits.npz"), "--optimizer", "adam", "--lr",
                                       "2e-3", "--epochs", "4", "--batch-size", "32", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1438 samples" in result.stdout and "359 held out" in result.stdout
    held_out = float(result.stdout.split("held-out accuracy ")[1].split(" ")[0])
    assert held_out >= 0.97, result.stdout
    assert np.load(tmp_path / "lenet_params.npz")["conv1.weight"].shape == (6, 1, 5, 5)


def test_symprop_train_saves_the_batch_norms_running_statistics(tmp_path):
    """The TOML digits CNN's batch norm: its running statistics, moved batch by batch as torch moves them, are saved
    beside the parameters under their state_dict keys, and the accuracies are the network's in eval mode, normalized
    by them (forward_eval)."""
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "digits_cnn.toml"), "--data",
                                       str(ROOT / "examples" / "data" / "digits.npz"), "--optimizer", "adam", "--lr",
                                       "3e-3", "--epochs", "10", "--batch-size", "32", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert float(result.stdout.split("held-out accuracy ")[1].split(" ")[0]) >= 0.97, result.stdout
    saved = np.load(tmp_path / "digits_cnn_params.npz")
    assert int(saved["2.num_batches_tracked"]) == 10 * -(-1438 // 32)
    assert saved["2.running_mean"].shape == (8,) and (saved["2.running_var"] > 0).all()
    assert not np.allclose(saved["2.running_var"], 1.0)  # moved from a fresh layer's


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((3, 1, 8, 8)), "labels": np.zeros(3, dtype=np.int64)},
     "x is (3, 1, 8, 8) and labels (3,), where the model takes rows of shape (1, 32, 32)"),
    ({"images": np.zeros((3, 1, 32, 32))}, "it needs an array x (the inputs) and an array labels"),
    ({"x": np.zeros((3, 1, 32, 32)), "labels": np.array([0, 1, 10])}, "labels must hold one class index per row"),
])
def test_an_npz_that_does_not_fit_is_refused_in_one_line(tmp_path, arrays, message):
    path = tmp_path / "images.npz"
    np.savez(path, **arrays)
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "lenet.py") + ":build", "--data", str(path),
                                       "--epochs", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def bad_csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "iris_classifier.toml"), "--data", str(path),
                                       "--epochs", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"symprop: error: {path}: ")
    assert not (tmp_path / "out").exists()
    return result.stderr


def test_csv_with_the_wrong_number_of_columns(tmp_path):
    error = bad_csv(tmp_path, "a,b,c,species\n1,2,3,0\n")
    assert "has 3 feature columns (a, b, c) besides the target species, but the spec takes inputs = 4" in error


def test_csv_with_a_ragged_row(tmp_path):
    assert "line 3 has 4 cells, the header has 5" in bad_csv(tmp_path, "a,b,c,d,y\n1,2,3,4,0\n1,2,3,0\n")


def test_csv_with_a_word_in_it(tmp_path):
    error = bad_csv(tmp_path, "a,b,c,d,y\n1,2,3,4,0\n1,two,3,4,1\n")
    assert "line 3, column 'b': 'two' is not a number" in error


def test_csv_with_a_class_out_of_range(tmp_path):
    error = bad_csv(tmp_path, "a,b,c,d,y\n1,2,3,4,0\n1,2,3,4,3\n")
    assert "line 3, column 'y': class label '3' is not one of 0 … 2" in error


def test_empty_csv(tmp_path):
    assert "data.csv: is empty" in bad_csv(tmp_path, "")


def test_without_matplotlib_it_says_so_and_trains(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib now fails
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "iris_classifier.toml"), "--data", str(IRIS),
                                       "--epochs", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "matplotlib is not installed" in result.stderr and "symprop[plot]" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris_classifier_params.npz"]


def test_symprop_train_draws_the_dropout_masks_of_a_model_in_training_mode(tmp_path):
    """A CNN with nn.Dropout in training mode: the .npz gives the images; train() draws the masks, and the scores
    draw them as torch's forward would."""
    (tmp_path / "cnn.py").write_text(
        "import torch\nfrom torch import nn\n\n\ndef build():\n    torch.manual_seed(0)\n"
        "    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.25), nn.Flatten(), nn.Linear(36, 3))\n"
        "    return net.train(), nn.CrossEntropyLoss(), (torch.rand(2, 1, 5, 5),), torch.tensor([0, 1])\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", x=rng.random((40, 1, 5, 5)), labels=rng.integers(0, 3, 40))
    result = CliRunner().invoke(main, ["train", f"{tmp_path / 'cnn.py'}:build", "--data", str(tmp_path / "images.npz"),
                                       "--epochs", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "32 samples" in result.stdout and "held-out accuracy" in result.stdout
