"""generated/ is the golden record: regenerating every example must give it byte for byte."""

import contextlib
import difflib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import committed

from symprop.cli import main

ROOT = Path(__file__).resolve().parent.parent
# the TOML specs, and the torch models that examples/*.py build (SOURCES names them for the CLI)
EXAMPLES = sorted((ROOT / "examples").glob("*.toml")) + [ROOT / "examples" / "gpt.py", ROOT / "examples" / "lenet.py"]
SOURCES = {"gpt": "gpt.py:build", "lenet": "lenet.py:build"}
UPDATE = "symprop derive examples/*.toml examples/gpt.py:build examples/lenet.py:build   (from the project root)"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """Every example derived by the CLI, as a user runs it, in a scratch copy of the project."""
    work = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "examples", work / "examples")
    with contextlib.chdir(work):
        result = CliRunner().invoke(main, ["derive", *(f"examples/{SOURCES.get(path.stem, path.name)}"
                                                        for path in EXAMPLES)])
    assert result.exit_code == 0, result.output
    return work / "generated"


FILES = {"numpy": "{}_numpy.py", "torch": "{}_torch.py", "latex": "{}.tex"}


def test_every_example_has_committed_output():
    assert EXAMPLES, "no examples found"
    for example in EXAMPLES:
        for pattern in FILES.values():
            name = pattern.format(example.stem)
            assert (ROOT / "generated" / name).exists(), f"generated/{name} is missing; run: {UPDATE}"


def test_nothing_stale_in_generated():
    names = {pattern.format(e.stem) for e in EXAMPLES for pattern in FILES.values()}
    stale = sorted(p.name for p in committed() if p.suffix in (".py", ".tex") and p.name not in names)
    assert not stale, f"generated/ holds committed files no example makes: {stale}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("target", list(FILES))
def test_regenerated_matches_golden(regenerated, example, target):
    name = FILES[target].format(example.stem)
    fresh = (regenerated / name).read_text(encoding="utf-8")
    golden = (ROOT / "generated" / name).read_text(encoding="utf-8")
    if fresh != golden:
        diff = "".join(difflib.unified_diff(golden.splitlines(True), fresh.splitlines(True),
                                            f"generated/{name} (committed)", f"{name} (regenerated)"))
        pytest.fail(f"generated/{name} is out of date. To update it, run: {UPDATE}\n{diff}")


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


def test_a_users_own_model_in_generated_is_not_the_golden_records():
    """symprop derive writes into generated/ by default: a user's own model derived from the project root made the
    golden record's tests fail ("generated/ holds files no example makes"; issue 26, item 8)."""
    own = ROOT / "generated" / "my_own_model_numpy.py"
    own.write_text("# a user's module\n")
    try:
        assert own not in committed("*.py") and committed("*.py")
    finally:
        own.unlink()
