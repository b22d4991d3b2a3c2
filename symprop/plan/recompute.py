"""Values computed again rather than kept: a trade of time for memory.

- a value read early and late that is several times larger than every batch-sized value it is computed from, those
  being kept until then anyway, is computed again from them where it is read late: attention's probabilities (N·H·S²
  from queries and keys of N·H·S·D/H, and the row max and sum), as flash attention's backward pass does;
- an elementwise value read early (forward) and late (backward), whose inputs are kept until then anyway, is
  computed again where it is read late, and freed after its first read: a layer norm's x̂ = x_c·rstd, GELU's
  erf(z/√2) and its output (autograd keeps only z).
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..program import Statement, reads
from ..shapes import batch_sized, broadcast
from .uses import Uses, elements, rewritten, unused, value_of


def _in_place_of(value: sp.Symbol, definition: sp.Expr, shapes: dict) -> bool:
    """Whether `definition` may stand where `value` is read: it has the value's shape as it is (a constant, or a
    value broadcast to a wider shape, would not)."""
    return bool(definition.free_symbols) and \
        broadcast(*(shapes.get(s, ()) for s in definition.free_symbols)) == shapes.get(value)


RECOMPUTE_BUDGET = 16  # operations: a value costlier than this to compute again is kept instead


def recompute_late_reads(uses: Uses, shapes: dict) -> None:
    last = uses.last()
    expanded: dict[sp.Symbol, sp.Expr] = {}  # values recomputed late, as expressions of what is kept
    statements, taken = uses.statements, {s.name for s in uses.statements}
    for statement in statements:  # a statement inserted below comes later in the list, and is read once
        if statement.kind not in ("expr", "map"):
            continue
        value = value_of(statement)
        late = [later for later in statements if value in uses.of(later)][1:]
        if not late or value in uses.output_reads:
            continue
        definition = (statement.operands[0] if statement.kind == "map" else statement.expr).xreplace(expanded)
        if not all(last.get(s, -1) >= statements.index(late[-1]) for s in definition.free_symbols) or \
                definition.has(sp.Piecewise) or sp.count_ops(definition) > RECOMPUTE_BUDGET or \
                not _in_place_of(value, definition, shapes):
            continue
        for reader in late:
            if reader.kind == "einsum" and _array_steps(definition) >= LONG_OPERAND:
                # a product's operand (GELU's output, in the next layer's weight gradient): a statement of its
                # own, `<name>_again`, which code computes in place
                again = sp.Symbol(unused(f"{value.name}_again", taken), real=True)
                shapes[again] = shapes.get(value)
                statements.insert(statements.index(reader), Statement(again.name, "expr", definition,
                                                                      computed_again=True))
                uses.rewrite(statements[statements.index(reader) - 1], {})
                uses.rewrite(reader, {value: again})
            else:
                uses.rewrite(reader, {value: definition})
        expanded[value] = definition
        last = uses.last()


LONG_OPERAND = 4  # operations on arrays in a value recomputed as a product's operand: a statement of its own


def _array_steps(expr: sp.Expr) -> int:
    return sum(1 for e in sp.preorder_traversal(expr) if isinstance(e, sp.Expr) and not (e.is_Symbol or e.is_number))


RECOMPUTED = ("expr", "einsum", "max", "sum", "softmax", "log_softmax")  # kinds of statement computed again
RECOMPUTED_STEPS = 8  # at most this many statements computed again for one value
RECOMPUTE_SPAN = 16  # statements between a value's first and second read: a shorter wait is not worth it
RECOMPUTE_GROWTH = 4  # computed again only if at least this many times the size of what it is computed from


def recompute_outgrown(uses: Uses, shapes: dict) -> Uses:
    for statement in list(uses.statements):
        value = sp.Symbol(statement.name, real=True)
        readers = uses.readers(value)
        if statement.kind not in RECOMPUTED or not batch_sized(shapes.get(value, ())) or len(readers) < 2 or \
                any(r.kind == "output" for r in readers):
            continue
        early, late = uses.statements.index(readers[0]), uses.statements.index(readers[1])
        chain = _recomputation(uses, statement, late, shapes) if late - early > RECOMPUTE_SPAN else None
        if chain is None:
            continue
        taken, renamed, again = {s.name for s in uses.statements}, {}, []
        for step in chain:  # computed again under new names, so that the first ones are freed after their reads
            name = unused(f"{step.name}_again", taken)
            symbol, old = sp.Symbol(name, real=True), sp.Symbol(step.name, real=True)
            copy = replace(step, name=name, tensor=step.tensor and replace(step.tensor, symbol=symbol))
            copy.expr, copy.operands = rewritten(copy, renamed)
            renamed[old], shapes[symbol] = symbol, shapes.get(old)
            again.append(copy)
        for reader in readers[1:]:
            uses.rewrite(reader, {value: renamed[value]})
        uses = Uses(uses.statements[:late] + again + uses.statements[late:], uses.outputs)
    return uses


def _recomputation(uses: Uses, statement: Statement, late: int, shapes: dict) -> list[Statement] | None:
    """The statements that compute `statement` again at position `late` from values kept until then anyway (or
    small ones, kept longer), in order; None where that is more than a few steps, reads a layer's weights in a
    product, or would not save much memory."""
    last, produced = uses.last(), {sp.Symbol(s.name, real=True): s for s in uses.statements}
    size = elements(shapes.get(sp.Symbol(statement.name, real=True), ()))
    chain: list[Statement] = []
    leaves: set[sp.Symbol] = set()

    def small(symbol):  # kept longer at little cost: a softmax's row max and sum, flash attention's statistics
        return not batch_sized(shapes.get(symbol, ())) or elements(shapes.get(symbol, ())) * 8 <= size

    def visit(step: Statement) -> bool:
        if any(step is c for c in chain):
            return True
        if step.kind not in RECOMPUTED or len(chain) >= RECOMPUTED_STEPS:
            return False
        if step.kind == "einsum" and not all(batch_sized(value.shape) for value in step.tensor.operands):
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
