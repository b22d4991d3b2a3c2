"""Shared helper: derive a symprop Model, render both modules into tmp_path, import them by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from symprop import Derivation

TARGETS = ("numpy", "torch")

# Rendered source per model. Deriving is the slow part, so one derivation serves every test of the
# same model; each test still writes its own files and imports fresh modules from them.
_sources: dict[str, dict[str, str]] = {}


def render(model) -> dict[str, str]:
    key = f"{model.name}|{model.inputs}|{model.net!r}|{model.describe_loss()}|{list(model.parameters)}"
    if key not in _sources:
        derivation = Derivation(model)
        _sources[key] = {target: derivation.render(target) for target in TARGETS}
    return _sources[key]


def import_path(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def build(tmp_path):
    """build(model) -> (numpy_module, torch_module), rendered into tmp_path and imported by path."""

    def build(model):
        modules = []
        for target, text in render(model).items():
            path = tmp_path / f"{model.name}_{target}.py"
            path.write_text(text)
            modules.append(import_path(path, f"{model.name}_{target}_{tmp_path.name}"))
        return tuple(modules)

    return build


def generated_modules(model, folder, targets=("numpy", "torch")) -> dict:
    """{backend: module}: the model derived and written into `folder`, each module imported from its file."""
    from symprop import derive_network

    derive_network(model).write(folder, targets)
    return {target: import_path(folder / f"{model.name}_{target}.py", f"{folder.name}_{model.name}_{target}")
            for target in targets}


GOLDEN = Path(__file__).resolve().parent / "golden"


def committed(pattern: str = "*") -> list[Path]:
    """The golden record: what the examples derive to, kept in tests/golden/, apart from generated/ (where
    `symprop derive` writes users' own output by default, and which git ignores; issue 26, item 8)."""
    return sorted(GOLDEN.glob(pattern))
