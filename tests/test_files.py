"""File safety: what `symprop derive` leaves in its output folder when it is killed, when it fails,
when a file there is not its own, and whether its output depends on the hash seed.

The guarantees tested here are those of `symprop.files.write_all` (its docstring has them):

- every output file is at every moment either its complete old version or its complete new one;
- an error leaves the folder byte-identical (all or nothing), temporary files removed;
- a kill (SIGKILL) before the first rename leaves every output as it was; a kill between two
  renames leaves some outputs new and the rest old, each complete: the renames of several
  files cannot be made one atomic step, and this is the honest limit of what symprop promises;
- a killed run's temporary files are hidden, named `.NAME.symprop-PID-XXXXXXXX.tmp` (never like an
  output), and the next run that writes NAME there removes them;
- a file that symprop did not write is never overwritten, unless --force is given.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from symprop.cli import main
from symprop.files import write_all

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("tiny_numpy.py", "tiny_torch.py", "tiny.tex")
TEMPORARY = re.compile(r"\.(?P<name>.+)\.symprop-\d+-[0-9a-f]{8}\.tmp")
SPEC = """
name = "tiny"
inputs = 3

[[layers]]
type = "linear"
outputs = WIDTH

[[layers]]
type = "tanh"

[[layers]]
type = "linear"
outputs = 1

[loss]
type = "mse"
"""
OLD, NEW = SPEC.replace("WIDTH", "2"), SPEC.replace("WIDTH", "3")

# Runs `symprop derive` with os.replace (or os.fsync) patched to SIGKILL the process at its Nth call.
KILLER = """
import os, signal, sys
target, at = sys.argv[1], int(sys.argv[2])
real = getattr(os, target)
calls = 0
def patched(*args):
    global calls
    if calls == at:
        os.kill(os.getpid(), signal.SIGKILL)
    calls += 1
    return real(*args)
setattr(os, target, patched)
from symprop.cli import main
main(sys.argv[3:])
"""


def derive(folder: Path, *args: str) -> tuple[int, str]:
    """`symprop derive tiny.toml --out gen ARGS`, in-process, in `folder`; returns (exit code, stderr)."""
    old = os.getcwd()
    try:
        os.chdir(folder)
        result = CliRunner().invoke(main, ["derive", "tiny.toml", "--out", "gen", *args])
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


FRESH = """
import os, sys
from symprop.cli import main
for folder in sys.argv[1:]:
    os.chdir(folder)
    main(["derive", "tiny.toml", "--out", "gen"], standalone_mode=False)
"""


def derive_fresh(*folders: Path) -> None:
    """`symprop derive tiny.toml --out gen` in each folder, in one new process."""
    result = subprocess.run([sys.executable, "-c", FRESH, *map(str, folders)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr


def snapshot(folder: Path) -> dict:
    """Every file and folder under `folder`: its bytes, or "folder"."""
    return {p.relative_to(folder): "folder" if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def visible(folder: Path) -> dict:
    return {name: data for name, data in snapshot(folder).items() if not name.name.startswith(".")}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """{"old": {name: bytes}, "new": ..., "new here": ...}: the outputs of OLD and NEW, from a new process
    (as the killed runs make them), and NEW's from this one (as in-process runs make them: the two agree
    unless symprop's sources change while the tests run)."""
    root = tmp_path_factory.mktemp("outputs")
    for kind, text in (("old", OLD), ("new", NEW), ("new here", NEW)):
        (root / kind).mkdir()
        (root / kind / "tiny.toml").write_text(text)
    derive_fresh(root / "old", root / "new")
    assert derive(root / "new here")[0] == 0
    found = {kind: {name: (root / kind / "gen" / name).read_bytes() for name in OUTPUTS} for kind in
             ("old", "new", "new here")}
    assert all(found["old"][name] != found["new"][name] for name in OUTPUTS)
    return found


@pytest.fixture
def versions(tmp_path, outputs):
    """(work folder holding tiny.toml = NEW and gen/ = OLD's outputs, {name: old bytes}, {name: new bytes})."""
    work = tmp_path / "work"
    (work / "gen").mkdir(parents=True)
    (work / "tiny.toml").write_text(NEW)
    for name, data in outputs["old"].items():
        (work / "gen" / name).write_bytes(data)
    return work, outputs["old"], outputs["new"]


# -- killed mid-write --------------------------------------------------------------------------
@pytest.mark.parametrize("target,at", [("fsync", 1), ("replace", 0), ("replace", 1), ("replace", 2)],
                         ids=["while writing temporaries", "before the first rename", "after one rename",
                              "after two renames"])
def test_a_killed_derive_leaves_every_file_complete(versions, outputs, target, at):
    """SIGKILL at a chosen point of write_all: each output is then exactly its old or its new version;
    before any rename the visible folder is byte-identical; the leftovers are hidden temporaries, never
    named like an output, and the next run removes them."""
    work, old, new = versions
    gen = work / "gen"
    before = visible(gen)
    result = subprocess.run([sys.executable, "-c", KILLER, target, str(at), "derive", "tiny.toml", "--out", "gen"],
                            cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr

    assert sorted(p.name for p in gen.iterdir() if not p.name.startswith(".")) == sorted(OUTPUTS)
    states = {name: "old" if (gen / name).read_bytes() == old[name] else
              "new" if (gen / name).read_bytes() == new[name] else "partial" for name in OUTPUTS}
    renames = at if target == "replace" else 0
    assert sorted(states.values()) == sorted(["new"] * renames + ["old"] * (len(OUTPUTS) - renames)), states
    if renames == 0:
        assert visible(gen) == before
    leftovers = hidden(gen)
    assert leftovers, "a killed run cannot remove its temporary files"
    for name in leftovers:
        match = TEMPORARY.fullmatch(name)
        assert match and match["name"] in OUTPUTS, name

    code, err = derive(work)  # the next run completes the job and clears the leftovers
    assert code == 0, err
    assert {name: (gen / name).read_bytes() for name in OUTPUTS} == outputs["new here"]
    assert hidden(gen) == []


# -- all or nothing ---------------------------------------------------------------------------
@pytest.mark.parametrize("force", [False, True], ids=["plain", "--force"])
def test_an_output_name_taken_by_a_folder_writes_nothing(versions, force):
    work, _, _ = versions
    gen = work / "gen"
    (gen / "tiny_torch.py").unlink()
    (gen / "tiny_torch.py").mkdir()
    (gen / "tiny_torch.py" / "inside.txt").write_text("mine")
    before = snapshot(work)
    code, err = derive(work, *(["--force"] if force else []))
    assert code == 2 and err.count("\n") == 1, err
    assert "tiny_torch.py" in err and ("is a folder" in err or "not written by symprop" in err), err
    assert snapshot(work) == before


def test_a_rename_that_fails_half_way_puts_back_the_files_already_renamed(versions, monkeypatch):
    """The second of three renames fails: the first is undone, and the folder is byte-identical."""
    work, _, _ = versions
    before = snapshot(work)
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, err = derive(work)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("symprop: error: ") and "cannot write: Permission denied" in err, err
    assert Path(calls[1]).name in err  # names the output, not the temporary file
    assert snapshot(work) == before


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "Ctrl-C"])
def test_a_failure_while_writing_leaves_nothing_behind(versions, monkeypatch, failure):
    work, _, _ = versions
    before = snapshot(work)
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise failure
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    if isinstance(failure, OSError):
        code, err = derive(work)
        assert code == 2 and err.count("\n") == 1 and "No space left on device" in err, err
    else:
        files = {work / "gen" / name: "# Generated by symprop\n" for name in OUTPUTS}
        with pytest.raises(KeyboardInterrupt):
            write_all(files)
    assert snapshot(work) == before


def test_new_files_follow_the_umask(tmp_path):
    """They were created 0600 (mkstemp's mode): unreadable to the group where 0644 was meant."""
    (tmp_path / "tiny.toml").write_text(NEW)
    assert derive(tmp_path)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    for name in OUTPUTS:
        assert stat.S_IMODE((tmp_path / "gen" / name).stat().st_mode) == 0o666 & ~umask


def test_leftovers_of_a_live_run_and_unrelated_files_are_kept(versions):
    work, _, _ = versions
    gen = work / "gen"
    alive = gen / f".tiny.tex.symprop-{os.getpid()}-0123abcd.tmp"  # this process: still running
    other = gen / ".unrelated.symprop-1-0123abcd.tmp"  # not one of this run's outputs
    foreign = gen / ".tiny.tex.notes"
    for path in (alive, other, foreign):
        path.write_text("keep")
    assert derive(work)[0] == 0
    assert hidden(gen) == sorted(p.name for p in (alive, other, foreign))


# -- files symprop did not write ---------------------------------------------------------------
@pytest.mark.parametrize("foreign", [("tiny_numpy.py",), ("tiny.tex",), ("tiny_numpy.py", "tiny.tex")],
                         ids=["a .py", "a .tex", "both"])
def test_never_overwrites_a_file_it_did_not_write(tmp_path, foreign):
    (tmp_path / "tiny.toml").write_text(NEW)
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "notes.txt").write_text("mine\n")
    for name in foreign:
        (gen / name).write_text("% my own derivation\n" if name.endswith(".tex") else "# my own code\n")
    before = snapshot(tmp_path)
    code, err = derive(tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert "was not written by symprop; pass --force" in err and foreign[0] in err, err
    assert snapshot(tmp_path) == before  # the other outputs are not written either

    code, err = derive(tmp_path, "--force")
    assert code == 0, err
    for name in OUTPUTS:
        first = (gen / name).read_text().splitlines()[0]
        assert first.startswith(("# Generated by symprop", "% Generated by symprop")), (name, first)
    assert (gen / "notes.txt").read_text() == "mine\n"
    assert hidden(gen) == []


def test_a_file_it_wrote_is_regenerated_without_force(versions, outputs):
    work, _, _ = versions
    assert derive(work)[0] == 0
    assert {name: (work / "gen" / name).read_bytes() for name in OUTPUTS} == outputs["new here"]


# -- the hash seed -----------------------------------------------------------------------------
def test_output_does_not_depend_on_the_hash_seed(tmp_path):
    """`symprop derive examples/*.toml` in two processes with different PYTHONHASHSEED: byte-identical folders."""
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.toml"))
    runs = {}
    for seed in ("0", "12345"):
        folder = tmp_path / f"seed{seed}"
        (folder / "examples").mkdir(parents=True)
        for name in examples:
            (folder / "examples" / name).write_bytes((ROOT / "examples" / name).read_bytes())
        if (ROOT / "examples" / "data").is_dir():  # specs may read data files beside them
            (folder / "examples" / "data").symlink_to(ROOT / "examples" / "data")
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", "from symprop.cli import main; main()", "derive",
                   *(f"examples/{name}" for name in examples)]
        runs[seed] = (folder, subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True))
    outputs = []
    for folder, process in runs.values():
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.append(snapshot(folder / "generated"))
    assert len(outputs[0]) >= 3 * len(examples)
    assert outputs[0].keys() == outputs[1].keys()
    differing = [str(name) for name in outputs[0] if outputs[0][name] != outputs[1][name]]
    assert not differing, f"differ between PYTHONHASHSEED=0 and 12345: {differing}"
