"""The shape of the code, as docs/architecture.md describes it: the stages import each other one way only, printers
only spell, and each op is named in its own module.

- No import cycle in symprop or in benchmarks/, counting the imports made inside functions.
- No printer imports the scheduler or the memory plan: it spells the plan's steps, which it is handed.
- Outside symprop/ops/, no module names an op: the front ends, the derivation, the plan and the printers find ops
  in the registry. (An op is named by its name or by torch.nn's class name, as a word; an op whose name is an
  ordinary word or a SymPy function's, such as exp, linear or clamp, is named where it is looked up by its name:
  lookup("exp"), call("linear", ...).)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from symprop.ops.registry import OPS

ROOT = Path(__file__).resolve().parent.parent
# ordinary words, or names of SymPy's, NumPy's and Python's own functions
WORDS = {"exp", "log", "sqrt", "abs", "sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "erf", "Max", "Min",
         "maximum", "minimum", "clamp", "linear", "identity", "dropout", "elementwise", "embedding", "positions",
         "transformer", "sum", "max", "map", "slice", "pad", "concat", "gather", "constant", "var", "std", "detach",
         "compare", "where", "sign", "argmax", "windows", "fold", "diagonal", "flip"}


def import_graph(folder: Path, package: str | None) -> dict[str, set[str]]:
    """Module -> the modules it imports (anywhere in it, functions included), within `folder`. A package's modules
    are named as Python names them (symprop.plan.lines); scripts in a folder that is no package by their stem."""
    files = {}
    for path in folder.rglob("*.py"):
        parts = list(path.relative_to(folder.parent if package else folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    edges: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                prefix = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in files else prefix
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("folder, package", [("symprop", "symprop"), ("benchmarks", None)])
def test_no_import_cycle(folder, package):
    edges = import_graph(ROOT / folder, package)
    assert len(edges) > 3
    assert cycles(edges) == []


def test_the_import_graph_sees_function_level_imports():
    """The check above is not blind: an import inside a function is an edge."""
    edges = import_graph(ROOT / "symprop", "symprop")
    assert "symprop.render" in edges["symprop.backends"]  # imported inside _render_module


def test_no_printer_imports_the_scheduler_or_the_plan():
    edges = import_graph(ROOT / "symprop", "symprop")
    printers = [name for name in edges if name.startswith("symprop.printing")]
    assert printers
    for printer in printers:
        assert not {e for e in edges[printer] if e == "symprop.schedule" or e.startswith("symprop.plan")}, printer


def _named(op) -> re.Pattern:
    words = {op.name} | ({op.torch.module} if op.torch.module else set())
    alternatives = "|".join(re.escape(w) for w in sorted(words))
    if op.name in WORDS:  # looked up or applied by name: lookup("exp"), call('linear', ...), OPS["clamp"], apply("sum")
        return re.compile(rf"""(lookup|call|apply|fact|by_\w+|OPS\[)\(?\s*["']({alternatives})["']""")
    return re.compile(rf"(?<![A-Za-z0-9_])({alternatives})(?![A-Za-z0-9_])", re.IGNORECASE)


OUTSIDE = sorted(path for path in (ROOT / "symprop").rglob("*.py") if "ops" not in path.relative_to(ROOT).parts)


@pytest.mark.parametrize("name", sorted(OPS))
def test_no_module_outside_the_ops_names_an_op(name):
    """The front ends, the derivation, the plan and the printers look ops up in the registry; the op is named in its
    own module (and in the modules of the ops built from it), and in the public exports, which the registry fills."""
    pattern = _named(OPS[name])
    exports = {ROOT / "symprop" / "__init__.py", ROOT / "symprop" / "functional.py"}
    naming = [str(path.relative_to(ROOT)) for path in OUTSIDE
              if path not in exports and pattern.search(path.read_text(encoding="utf-8"))]
    assert naming == [], f"{name} is named outside symprop/ops/"


def test_the_name_check_is_not_blind():
    pattern = _named(OPS["silu"])
    assert pattern.search("y = F.silu(x)") and pattern.search("nn.SiLU()") and not pattern.search("silua")
    pattern = _named(OPS["exp"])
    assert pattern.search('spelling = lookup("exp").spell') and not pattern.search("np.exp(x)")


def test_every_primitive_is_spelled_by_every_printer():
    """A primitive's module says how each backend prints it: a backend added later finds here what it lacks."""
    from symprop.ops.primitive import Primitive
    from symprop.ops.registry import BACKENDS

    primitives = [op for op in OPS.values() if isinstance(op, Primitive)]
    assert len(primitives) > 10
    missing = {op.name: sorted(set(BACKENDS) - set(op.spell)) for op in primitives if set(BACKENDS) - set(op.spell)}
    assert missing == {}


def test_every_name_an_op_claims_has_a_meaning():
    """Each torch name an op lists (function, method, ATen overload) means something on symbolic tensors: its
    functional, its public function, or its own entry in `front`; none is claimed and then refused."""
    from symprop.ops.registry import meaning

    empty = [f"{op.name}: {name}" for op in OPS.values()
             for name in (*op.torch.functions, *op.torch.methods, *op.torch.aten) if meaning(op, name) is None]
    assert empty == []
