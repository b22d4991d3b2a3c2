"""Values computed again rather than kept: a trade of time for memory, made only where it lowers the peak.

Two kinds of candidate, each taken only if it frees its array at a statement that holds at least HOT of the most
memory any statement holds (`uses.live_profile`), and only if computing it again is cheap: its ops' costs for the
backend (`ops.registry.cost`, in passes over the array: NumPy's erf is 80, torch's 10), at most RECOMPUTE_BUDGET, and
none of its functions costlier than FEW_PASSES (an erf is kept: computing it again costs more than it frees).

- a value read early and late that is several times larger than every batch-sized value it is computed from, those
  being kept until then anyway, is computed again from them where it is read late: attention's probabilities (N·H·S²
  from queries and keys of N·H·S·D/H, and the row max and sum), as flash attention's backward pass does;
- an elementwise value read early (forward) and late (backward), whose inputs are kept until then anyway, is
  computed again where it is read late, and freed after its first read: a layer norm's x̂ = x_c·rstd, an activation
  (autograd keeps only its input).

A value computed again keeps its name: the code frees it after its first read, and makes it again, under the same
name, where a product reads it late (or computes it inside an elementwise step that reads it).
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..ops.registry import cost, fact
from ..program import Statement, reads
from ..shapes import batch_sized, broadcast
from .uses import Uses, elements, live_profile, value_of

RECOMPUTE_BUDGET = 16  # passes over the array: a value costlier than this to compute again is kept instead
FEW_PASSES = 4  # a value holding a function costlier than this (an erf, an exp) is never computed again
HOT = 0.9  # a value is computed again only where that frees it at a statement holding this share of the peak


def passes(expr: sp.Expr, backend: str) -> float:
    """What computing `expr` costs `backend`, in passes over the array: each function its op's cost, each other
    operation one."""
    total = 0.0
    for e in sp.preorder_traversal(expr):
        if getattr(e, "is_Function", False):
            total += cost(type(e), backend)
        elif isinstance(e, sp.Expr) and (e.is_Add or e.is_Mul):
            total += len(e.args) - 1
        elif isinstance(e, sp.Expr) and e.is_Pow:
            total += 1
    return total


def _costly(expr: sp.Expr, backend: str) -> bool:
    """Whether `expr` holds a function that costs `backend` more than FEW_PASSES passes."""
    return any(cost(type(e), backend) > FEW_PASSES for e in sp.preorder_traversal(expr)
               if getattr(e, "is_Function", False))


def _frees_at_peak(uses: Uses, shapes: dict, after: int, before: int) -> bool:
    """Whether a value no longer held strictly between statements `after` and `before` would lower the peak."""
    profile = live_profile(uses, shapes)
    return max(profile[after + 1:before], default=0) >= HOT * max(profile)


def _in_place_of(value: sp.Symbol, definition: sp.Expr, shapes: dict) -> bool:
    """Whether `definition` may stand where `value` is read: it has the value's shape as it is (a constant, or a
    value broadcast to a wider shape, would not)."""
    return bool(definition.free_symbols) and \
        broadcast(*(shapes.get(s, ()) for s in definition.free_symbols)) == shapes.get(value)


def recompute_late_reads(uses: Uses, shapes: dict, backend: str) -> None:
    expanded: dict[sp.Symbol, sp.Expr] = {}  # values computed again late, as expressions of what is kept
    statements, last = uses.statements, uses.last()
    for statement in list(statements):
        if statement.kind not in ("expr", "map") or statement.computed_again or \
                not batch_sized(shapes.get(value_of(statement), ())):
            continue
        value, index = value_of(statement), statements.index(statement)
        readers = uses.readers_after(index, value)
        late = readers[1:]
        if not late or any(r.kind == "output" for r in readers):
            continue
        definition = (statement.operands[0] if statement.kind == "map" else statement.expr).xreplace(expanded)
        first, final = statements.index(readers[0]), statements.index(late[-1])
        if not all(last.get(s, -1) >= final for s in definition.free_symbols) or \
                definition.has(sp.Piecewise) or passes(definition, backend) > RECOMPUTE_BUDGET or \
                _costly(definition, backend) or not _in_place_of(value, definition, shapes):
            continue
        again = any(fact(r.kind, "product") for r in late)  # a product's operand is an array anyway: made by name
        if not _frees_at_peak(uses, shapes, first, statements.index(late[0]) if again else final):
            continue
        if again:  # a product reads it (an activation, in the next layer's weight gradient): made again by name
            made = Statement(statement.name, "expr", definition, computed_again=True)
            uses.insert(statements.index(late[0]), made)
        else:
            for reader in late:
                uses.rewrite(reader, {value: definition})
        expanded[value] = definition
        last = uses.last()
    _computed_once(uses, expanded)


def _computed_once(uses: Uses, expanded: dict) -> None:
    """A value computed again inside two or more late statements (an activation's erf, in its output computed again
    for the next layer's weight gradient and in its derivative) is computed again once, under its own name, before
    the first of them, which read it by name: no value is computed twice under two names."""
    for value, definition in expanded.items():
        if definition.is_Atom:
            continue
        made = [i for i, s in enumerate(uses.statements) if s.name == value.name]
        holders = [s for s in uses.statements[made[0] + 1:] if s.name != value.name and
                   any(e is not None and e.has(definition) for e in (s.expr, *s.operands))]
        if len(holders) < 2:
            continue
        uses.insert(uses.statements.index(holders[0]), Statement(value.name, "expr", definition, computed_again=True))
        for holder in holders:
            uses.rewrite(holder, {definition: value})


def _recomputable(statement: Statement) -> bool:
    """An expression, a call, or an op the plan may compute again (a product, a sum, a max)."""
    return statement.kind in ("expr", "call") or fact(statement.kind, "recompute")


RECOMPUTED_STEPS = 8  # at most this many statements computed again for one value
RECOMPUTE_SPAN = 16  # statements between a value's first and second read: a shorter wait is not worth it
RECOMPUTE_GROWTH = 4  # computed again only if at least this many times the size of what it is computed from


def recompute_outgrown(uses: Uses, shapes: dict) -> Uses:
    for statement in list(uses.statements):
        value = statement.symbol
        if not _recomputable(statement) or not batch_sized(shapes.get(value, ())):
            continue
        readers = uses.readers_after(uses.statements.index(statement), value)
        if len(readers) < 2 or any(r.kind == "output" for r in readers):
            continue
        early, late = uses.statements.index(readers[0]), uses.statements.index(readers[1])
        chain = _recomputation(uses, statement, late, shapes) if late - early > RECOMPUTE_SPAN else None
        if chain is None or not _frees_at_peak(uses, shapes, early, late):
            continue
        # computed again under the same names, just before their late read, so that the first ones are freed
        # after their early reads
        again = [replace(step, computed_again=True, label=False) for step in chain]
        uses = Uses(uses.statements[:late] + again + uses.statements[late:], uses.outputs)
    return uses


def _recomputation(uses: Uses, statement: Statement, late: int, shapes: dict) -> list[Statement] | None:
    """The statements that compute `statement` again at position `late` from values kept until then anyway (or
    small ones, kept longer), in order; None where that is more than a few steps, reads a layer's weights in a
    product, or would not save much memory."""
    last, produced = uses.last(), {s.symbol: s for s in uses.statements[:late]}
    size = elements(shapes.get(statement.symbol, ()))
    chain: list[Statement] = []
    leaves: set[sp.Symbol] = set()

    def small(symbol):  # kept longer at little cost: the row max and sum of probabilities (flash attention's)
        return not batch_sized(shapes.get(symbol, ())) or elements(shapes.get(symbol, ())) * 8 <= size

    def visit(step: Statement) -> bool:
        if any(step is c for c in chain):
            return True
        if not _recomputable(step) or len(chain) >= RECOMPUTED_STEPS:
            return False
        products = step.kind == "call" or fact(step.kind, "product")
        if products and not all(batch_sized(shapes.get(s, ())) for s in reads(step)):
            return False  # a layer's product with its weights costs what it saves: attention's q·k does not
        for symbol in sorted(reads(step), key=sp.default_sort_key):
            producer = produced.get(symbol)
            if producer is None or small(symbol) or last.get(symbol, -1) >= late:
                leaves.add(symbol)
            elif not visit(producer):
                return False
        chain.append(step)
        return True

    if not visit(statement):
        return None
    kept = [elements(shapes.get(s, ())) for s in leaves if batch_sized(shapes.get(s, ()))]
    return chain if kept and max(kept) * RECOMPUTE_GROWTH <= size else None
