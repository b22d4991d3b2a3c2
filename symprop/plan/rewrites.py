"""Rewrites of the program as code runs it (the document keeps the program as derived): each keeps every value, and
reads or computes it so that less is held at once.

- a small reduction of batch-sized arrays (a bias's gradient) runs as soon as they exist, so that they can be freed
  there;
- a number that scales a product scales its smaller operand instead: c·(q kᵀ) as (c·q) kᵀ, so that the product's
  array takes what is added to it (a mask) in place;
- a factor constant along a sum's axes multiplies where the sum is read, where it often cancels (the backward pass
  of probabilities e/s: Σ(a·da·s)/s is Σ(a·da), and s is freed after the forward pass);
- where q = e/s is computed and q and s are read later anyway, a later e reads q·s (the exponentials are freed after
  the forward pass);
- a part that CSE named but one elementwise value reads is written into it again where the backend adds c·a·b into
  an array in one kernel (a layer norm's δx = σ⁻¹(x̄ − Σx̄/E − tmp), tmp = x̂Σ(x̄x̂)/E: one addcmul_, where tmp took
  two passes and its subtraction two more).
"""

from __future__ import annotations

from collections import Counter

import sympy as sp

from ..ops.registry import fact
from ..program import Statement, reads
from ..shapes import batch_sized, broadcast
from .uses import Uses, constant_along, elements, reads_rewritten, unused


def scale_smaller_operands(uses: Uses) -> None:
    for statement in uses.statements:
        value = sp.Symbol(statement.name, real=True)
        readers = uses.readers(value) if fact(statement.kind, "product") and len(statement.operands) == 2 else []
        if len(readers) != 1 or readers[0].kind != "expr" or readers[0].expr.count(value) != 1:
            continue
        scaled = [e for e in sp.preorder_traversal(readers[0].expr) if e.is_Mul and value in e.args and
                  all(a.is_number for a in e.args if a != value)]
        sizes = [elements(operand.shape) for operand in statement.tensor.operands]
        if len(scaled) != 1 or min(sizes) >= elements(statement.shape):
            continue
        smaller = sizes.index(min(sizes))
        statement.operands = tuple(scaled[0] / value * operand if k == smaller else operand
                                   for k, operand in enumerate(statement.operands))
        uses.rewrite(statement, {})
        uses.rewrite(readers[0], {scaled[0]: value})


def factor_out_of_sums(uses: Uses, shapes: dict) -> None:
    """Σ_k(c·x) = c·Σ_k(x) for c constant along k, where it reads no more than before wherever the sum is read."""
    for i, statement in enumerate(uses.statements):
        operand = statement.operands[0] if fact(statement.kind, "sums") else None
        ndim = len(statement.tensor.operands[0].shape) if operand is not None else 0
        if operand is None or not operand.is_Mul or len(statement.shape) != ndim:  # keepdims sums only
            continue
        outer = [f for f in operand.args if f.free_symbols and
                 all(constant_along(shapes.get(s, ()), statement.tensor.axes, ndim) for s in f.free_symbols)]
        inner = operand.func(*(f for f in operand.args if f not in outer))
        full = statement.tensor.operands[0].shape  # the factors left must still make the whole array
        if not outer or not inner.free_symbols or broadcast(*(shapes.get(s, ()) for s in inner.free_symbols)) != full:
            continue
        value = sp.Symbol(statement.name, real=True)
        mapping = {value: value * sp.Mul(*outer)}
        readers = uses.readers(value, i + 1)
        if all(r.kind in ("expr", "output") and reads_rewritten(r, mapping) <= uses.of(r) for r in readers):
            statement.operands = (inner, *statement.operands[1:])
            uses.rewrite(statement, {})
            for reader in readers:
                uses.rewrite(reader, mapping)


def merge_scaled_terms(uses: Uses, shapes: dict) -> None:
    """v = c·A, read once, by a sum that has another term c·B: v becomes A + B (under a name of its own) and the sum
    reads c·v, so that torch adds it with one addcmul, and B is added where A is made (a layer norm's backward pass
    under a residual, δ + σ⁻¹(x̄ − x̂Σ(x̄x̂)/E) − σ⁻¹Σx̄/E: three passes over the array where it took four)."""
    made = Counter(s.name for s in uses.statements)
    taken = set(made)
    for statement in list(uses.statements):
        value = sp.Symbol(statement.name, real=True)
        reader = _sole_elementwise_reader(uses, statement, made)
        total = _elementwise_expr(reader) if reader is not None else None
        if total is None or not statement.expr.is_Mul or not total.is_Add or value not in total.args or \
                total.count(value) != 1:
            continue
        shape = shapes.get(value)
        for scale in (f for f in statement.expr.args if f.is_Symbol):
            others = [t for t in total.args if t != value and t.is_Mul and scale in t.args]
            if not others or shape is None or any(  # B must not widen A + B past v's shape
                    broadcast(shapes.get(s, ()), shape) != shape for t in others for s in t.free_symbols):
                continue
            unscaled = sp.Symbol(unused(f"{statement.name}_unscaled", taken), real=True)
            shapes[unscaled] = shape
            statement.name, statement.expr = unscaled.name, sp.Add(statement.expr / scale, *(t / scale for t in others))
            merged = sp.Add(*(t for t in total.args if t != value and t not in others), scale * unscaled)
            if reader.kind == "map":
                reader.operands = (merged, *reader.operands[1:])
            else:
                reader.expr = merged
            uses.rewrite(statement, {})
            uses.rewrite(reader, {})
            break


def reductions_early(statements: list[Statement]) -> list[Statement]:
    out: list[Statement] = []
    where: dict[sp.Symbol, int] = {}  # symbol -> its statement's position in out
    for statement in statements:
        reduces = fact(statement.kind, "sums") or fact(statement.kind, "product")
        small = reduces and not batch_sized(statement.shape) and \
            any(batch_sized(value.shape) for value in statement.tensor.operands)
        at = max((where[s] + 1 for s in reads(statement) if s in where), default=0) if small else len(out)
        if at < len(out):
            where = {symbol: i + (i >= at) for symbol, i in where.items()}
        out.insert(at, statement)
        where[sp.Symbol(statement.name, real=True)] = at
    return out


def read_quotients(uses: Uses) -> None:
    last, statements = uses.last(), uses.statements
    for i, statement in enumerate(statements):
        expr = statement.expr
        if statement.kind != "expr" or not expr.is_Mul or len(expr.args) != 2:
            continue
        numerator, denominator = sorted(expr.args, key=lambda a: a.is_Pow)
        if not (numerator.is_Symbol and denominator.is_Pow and denominator.exp == -1 and denominator.base.is_Symbol):
            continue
        quotient, total = sp.Symbol(statement.name, real=True), denominator.base
        for j in range(i + 1, len(statements)):
            if numerator in uses.of(statements[j]) and last.get(quotient, -1) >= j and last.get(total, -1) >= j:
                uses.rewrite(statements[j], {numerator: quotient * total})


def inline_parts_read_once(uses: Uses, shapes: dict) -> None:
    """A part CSE named (not a label of the derivation) that one elementwise statement of its shape reads, written
    into that statement again."""
    made = Counter(s.name for s in uses.statements)
    for statement in list(uses.statements):
        value = sp.Symbol(statement.name, real=True)
        reader = _sole_elementwise_reader(uses, statement, made)
        if statement.label or reader is None:
            continue
        whole = shapes.get(sp.Symbol(reader.name, real=True)) if reader.kind == "expr" else tuple(reader.shape)
        if whole is None or shapes.get(value) != whole:  # of the reader's whole shape: elementwise there
            continue
        uses.rewrite(reader, {value: statement.expr})
        uses.statements.remove(statement)


def _sole_elementwise_reader(uses: Uses, statement: Statement, made: Counter) -> Statement | None:
    """The one statement that reads the value of an expression `statement` (made once, not returned, not computed
    again: `made` counts the names made), where that reader computes elementwise: an expression, or a stored value
    whose operand is not broadcast; None otherwise."""
    value = sp.Symbol(statement.name, real=True)
    if statement.kind != "expr" or statement.expr is None or statement.computed_again or \
            made[statement.name] != 1 or value in uses.output_reads:
        return None
    readers = uses.readers(value)
    reader = readers[0] if len(readers) == 1 else None
    if reader is None or reader.computed_again or not (
            reader.kind == "expr" or (reader.kind == "map" and not any(reader.broadcast_operands))):
        return None
    return reader


def _elementwise_expr(reader: Statement) -> sp.Expr:
    """What an elementwise statement computes: a stored value's operand, or an expression's own."""
    return reader.operands[0] if reader.kind == "map" else reader.expr
