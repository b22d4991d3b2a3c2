"""The golden record's modules (tests/golden/) stand alone: no symprop, nothing but numpy (or torch)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy
import pytest
from conftest import GOLDEN, committed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NUMPY_MODULES = committed("*_numpy.py")
TORCH_MODULES = committed("*_torch.py")
# numpy and torch live here; symprop's editable install is a .pth file in it, which is only
# processed by `site`. The subprocess runs without `site` (-S) and adds this directory by hand.
SITE_PACKAGES = str(Path(numpy.__file__).resolve().parents[1])


def test_modules_exist():
    assert NUMPY_MODULES and TORCH_MODULES
    assert [p.name[: -len("_numpy.py")] for p in NUMPY_MODULES] == [p.name[: -len("_torch.py")] for p in TORCH_MODULES]


def target_kind(name: str) -> str:
    """index | probs | unit | real, read off examples/NAME.toml (a torch model's, examples/NAME.py: off its module)."""
    if not (EXAMPLES / f"{name}.toml").exists():
        module = (GOLDEN / f"{name}_numpy.py").read_text()
        return "index" if re.search(r"^TARGET_SHAPE = .*# class indices", module, re.M) else "real"
    loss = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())["loss"]
    kind = loss["type"]
    if kind == "nll" or (kind == "cross_entropy" and loss.get("target", "index") == "index"):
        return "index"
    if kind in ("cross_entropy", "kl_div"):
        return "probs"
    if kind in ("bce", "bce_with_logits"):
        return "unit"
    return "real"


RUNNER = r"""
import importlib.util, math, sys
sys.path.append(sys.argv[1])
try:
    import symprop
except ImportError:
    pass
else:
    raise SystemExit("symprop is importable: " + repr(getattr(symprop, "__file__", None)))
import numpy as np


def check(path, kind, backend):
    spec = importlib.util.spec_from_file_location("standalone_" + backend, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    shapes = module.PARAM_SHAPES
    params = module.init_params(0)
    batch = 7
    ids = getattr(module, "TOKEN_IDS", {})
    xs = [rng.integers(0, ids[name], size=(batch, *shape[1:])) if name in ids else rng.normal(size=(batch, *shape[1:]))
          for name, shape in module.INPUT_SHAPES.items()]
    if backend == "torch":
        import torch
        xs = [torch.from_numpy(x) for x in xs]
    out_shape = tuple(module.forward(params, *xs).shape)
    assert out_shape[0] == batch, out_shape
    k = out_shape[1:]
    if kind == "index":
        t = rng.integers(0, k[-1], size=(batch, *k[:-1]))
    elif kind == "probs":
        t = np.exp(rng.normal(size=(batch, *k)))
        t /= t.sum(axis=-1, keepdims=True)
    elif kind == "unit":
        t = rng.uniform(size=(batch, *k))
    else:
        t = rng.normal(size=(batch, *k))
    if backend == "torch":
        t = torch.from_numpy(t)
    loss, grads = module.loss_and_gradients(params, *xs, t)
    if backend == "torch":
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0, loss
        loss = loss.item()
        grads = {key: value.numpy() for key, value in grads.items()}
    assert type(loss) is float and math.isfinite(loss), loss
    assert list(grads) == list(shapes), (list(grads), list(shapes))
    for key, shape in shapes.items():
        assert grads[key].shape == shape, (key, grads[key].shape, shape)
        assert np.all(np.isfinite(grads[key])), key
    print(path, "loss", loss)


backend, pairs = sys.argv[2], sys.argv[3:]
for path, kind in zip(pairs[::2], pairs[1::2]):
    check(path, kind, backend)
assert not [m for m in sys.modules if m.split(".")[0] == "symprop"]
print("OK")
"""


def run_isolated(paths: list[Path], backend: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run RUNNER on `paths` with python -I -S: no symprop, only site-packages' plain packages."""
    args = []
    for path in paths:
        args += [str(path), target_kind(path.name[: -len(f"_{backend}.py")])]
    return subprocess.run([sys.executable, "-I", "-S", "-c", RUNNER, SITE_PACKAGES, backend, *args],
                          cwd=tmp_path, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", NUMPY_MODULES, ids=lambda p: p.stem)
def test_numpy_module_runs_without_symprop(path, tmp_path):
    result = run_isolated([path], "numpy", tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.endswith("OK\n"), result.stdout


def test_torch_modules_run_without_symprop(tmp_path):
    """All torch modules in one subprocess, so that torch is imported once."""
    result = run_isolated(TORCH_MODULES, "torch", tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.endswith("OK\n"), result.stdout


def test_symprop_is_not_importable_in_the_subprocess(tmp_path):
    """The runner's own check works: the same interpreter with `site` does import symprop."""
    probe = "import symprop, sys; print(symprop.__file__)"
    with_site = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert with_site.returncode == 0, with_site.stderr
    without = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.append({SITE_PACKAGES!r}); "
                              + probe], cwd=tmp_path, capture_output=True, text=True,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert without.returncode != 0 and "No module named 'symprop'" in without.stderr, without.stdout


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def guarded_imports(path: Path) -> set[str]:
    """The modules imported inside a try whose except ImportError goes on without them (SciPy's erf)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Try) and any(isinstance(h.type, ast.Name) and h.type.id == "ImportError"
                                             for h in node.handlers):
            names |= {inner.module for inner in node.body if isinstance(inner, ast.ImportFrom)}
    return names


@pytest.mark.parametrize("path", NUMPY_MODULES + TORCH_MODULES, ids=lambda p: p.stem)
def test_imports_only_the_backend(path):
    """NumPy modules import numpy, and SciPy's erf only where they run without it; torch modules import torch."""
    backend = "numpy" if path.name.endswith("_numpy.py") else "torch"
    names = imported_modules(path)
    assert names, "no imports at all"
    optional = guarded_imports(path) if backend == "numpy" else set()
    assert optional <= {"scipy.special"}, optional
    others = {name for name in names if name.split(".")[0] != backend} - optional
    assert not others, f"{path.name} imports {sorted(others)}"
