"""tests/golden/ is the golden record: regenerating every example must give it byte for byte."""

import contextlib
import difflib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOLDEN, committed

from symprop.cli import main

ROOT = Path(__file__).resolve().parent.parent
# the TOML specs, and the torch models that examples/*.py build (SOURCES names them for the CLI)
EXAMPLES = sorted((ROOT / "examples").glob("*.toml")) + [ROOT / "examples" / "gpt.py", ROOT / "examples" / "lenet.py"]
SOURCES = {"gpt": "gpt.py:build", "lenet": "lenet.py:build"}
UPDATE = ("symprop derive examples/*.toml examples/gpt.py:build examples/lenet.py:build --out tests/golden"
          "   (from the project root)")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """Every example derived by the CLI, as a user runs it, in a scratch copy of the project."""
    work = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "examples", work / "examples")
    with contextlib.chdir(work):
        result = CliRunner().invoke(main, ["derive", *(f"examples/{SOURCES.get(path.stem, path.name)}"
                                                        for path in EXAMPLES), "--out", "tests/golden"])
    assert result.exit_code == 0, result.output
    return work / "tests" / "golden"


FILES = {"numpy": "{}_numpy.py", "torch": "{}_torch.py", "latex": "{}.tex"}


def test_every_example_has_committed_output():
    assert EXAMPLES, "no examples found"
    for example in EXAMPLES:
        for pattern in FILES.values():
            name = pattern.format(example.stem)
            assert (GOLDEN / name).exists(), f"tests/golden/{name} is missing; run: {UPDATE}"


def test_nothing_stale_in_the_golden_record():
    names = {pattern.format(e.stem) for e in EXAMPLES for pattern in FILES.values()}
    stale = sorted(p.name for p in committed() if p.suffix in (".py", ".tex") and p.name not in names)
    assert not stale, f"tests/golden/ holds files no example makes: {stale}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("target", list(FILES))
def test_regenerated_matches_golden(regenerated, example, target):
    name = FILES[target].format(example.stem)
    fresh = (regenerated / name).read_text(encoding="utf-8")
    golden = (GOLDEN / name).read_text(encoding="utf-8")
    if fresh != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), fresh.splitlines(True),
                                            f"tests/golden/{name} (committed)", f"{name} (regenerated)"))
        pytest.fail(f"tests/golden/{name} is out of date. To update it, run: {UPDATE}\n{diff}")


def test_the_golden_record_is_formatted_by_ruff():
    """Generated modules are formatted by a real formatter: ruff finds nothing to change in them."""
    import subprocess

    from ruff.__main__ import find_ruff_bin

    modules = [str(path) for path in committed("*.py")]
    result = subprocess.run([find_ruff_bin(), "format", "--isolated", "--line-length", "120", "--check", *modules],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", committed("*.py"), ids=lambda p: p.stem)
def test_no_value_is_computed_twice_under_two_names(path):
    """Within a generated function, one right-hand side assigned to two names is one value computed twice (a value
    the plan computes again keeps its own name)."""
    import re

    twice, function, seen = [], None, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"def (\w+)", line):
            function, seen = match.group(1), {}
        elif (match := re.match(r" {4}(\w+) = (.+)$", line)) and function:
            name, value = match.groups()
            if len(value) > 12 and not value.startswith("params[") and seen.setdefault(value, name) != name:
                twice.append(f"{function}: {seen[value]} and {name} = {value}")
    assert twice == []


def test_a_users_own_output_and_the_golden_record_are_apart(tmp_path):
    """symprop derive writes into generated/ by default, and that folder held the golden record: a user's own
    model derived from the project root made the golden record's tests fail, and deriving an example with other
    options overwrote its record (issue 26, item 8). The record now lives in tests/golden/, and git ignores
    generated/."""
    import subprocess

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(GOLDEN, tmp_path / "tests" / "golden")
    before = {path.name: path.read_bytes() for path in (tmp_path / "tests" / "golden").glob("*.*")}
    with contextlib.chdir(tmp_path):  # the project root, as a user derives from it
        result = CliRunner().invoke(main, ["derive", "examples/seed_neuron.toml", "--hvp", "--target", "numpy"])
    assert result.exit_code == 0, result.output
    assert "def hvp(" in (tmp_path / "generated" / "seed_neuron_numpy.py").read_text()
    assert {path.name: path.read_bytes() for path in (tmp_path / "tests" / "golden").glob("*.*")} == before
    ignored = subprocess.run(["git", "check-ignore", "-q", "generated/seed_neuron_numpy.py"], cwd=ROOT,
                             capture_output=True)
    assert ignored.returncode in (0, 128), "git does not ignore generated/"  # 128: not a git checkout
