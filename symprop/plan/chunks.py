"""Chunks: a line whose evaluation copies far more than it makes, computed a few samples at a time.

A product that reads overlapping windows (a convolution's im2col) gets a copy of them laid out for BLAS: for LeNet's
first convolution 25 entries per output position and input channel, four times the output it makes, and more than
the whole of what autograd holds. A fold of a product (a convolution's input gradient) first makes the product, a
window's worth of entries per position. Computed for all samples at once, that copy is the peak of the call; computed
for a chunk of samples at a time, it is one chunk's, reused:

    z = np.empty((len(win), 6, 28, 28), x.dtype)
    for start in range(0, len(win), 8):
        z[start : start + 8] = conv1_weight.reshape(6, 25) @ win[start : start + 8]...

and a gradient that sums over the samples (a kernel's) is the chunks' products added into zeros. A line is chunked where
each op it evaluates computes a sample's rows from the same sample's rows (`batch_rows`), every array it reads has the
batch as its first axis, and its copies hold more entries per sample than its result: the products and the arithmetic
are the same, the copies smaller and warm in the cache.
"""

from __future__ import annotations

import math
from dataclasses import replace

import sympy as sp

from ..ops.registry import fact
from ..program import Program, Step, inlinable, reads
from ..shapes import batch_sized

BUDGET = 1 << 18  # entries one chunk's copies may hold: 1 MiB in float32
WORTH_IT = 1 << 12  # copies of fewer entries per sample than this are left whole: a loop for nothing


def chunk_copies(program: Program, steps: list[Step]) -> list[Step]:
    """The steps, each line that would copy much more than it makes computed in chunks of samples (Step.chunk)."""
    inlined = {s.tensor.symbol: s for s in program.statements
               if fact(s.kind, "product") and s.tensor.symbol in inlinable(program, code=True)}
    kinds = {s.symbol: s.kind for s in program.statements}
    out = []
    for step in steps:
        chunked = _chunked(step, program.shapes, inlined, kinds) if step.kind == "assign" and not step.source else None
        out.append(step if chunked is None else replace(step, chunk=chunked[0], summed=chunked[1]))
    return out


def _chunked(step: Step, shapes: dict, inlined: dict, kinds: dict) -> tuple[int, bool] | None:
    """(samples per chunk, whether the chunks' results are summed) for a line worth chunking; None otherwise."""
    statement = step.statement
    whole = statement is not None and (step.expr is None or statement.tensor and step.expr == statement.tensor.symbol)
    if not whole:
        return None  # a part of a statement, or a factor (z = x @ w.T before z += b is the product itself)
    rows = _batch_rows(statement)
    if rows is None:
        return None
    copies = _copies(statement, shapes, inlined, kinds)
    if copies is None:
        return None
    made = 0 if rows == "summed" else _per_sample(statement.shape)
    if copies < WORTH_IT or copies <= made:
        return None
    return 1 << max(0, int(math.log2(max(1, BUDGET // copies)))), rows == "summed"


def _batch_rows(statement) -> str | None:
    """'kept' or 'summed' where the statement's op computes each sample's rows from that sample's rows alone, the
    batch its result's first axis (or summed away); None otherwise."""
    rule = fact(statement.kind, "batch_rows")
    if not rule or statement.tensor is None:
        return None
    rows = rule(statement.tensor)
    if rows == "kept" and not _batch_first(statement.shape):
        return None
    return rows


def _copies(statement, shapes, inlined, kinds) -> int | None:
    """Entries per sample of the copies made in evaluating the statement (with the products printed in its place);
    None where what it reads is not computed sample by sample, or has the batch elsewhere than first."""
    copies = 0
    for symbol in sorted(reads(statement), key=str):
        shape = shapes.get(symbol, ())
        if symbol in inlined:
            inner = inlined[symbol]
            more = _copies(inner, shapes, inlined, kinds) if _batch_rows(inner) == "kept" else None
            if more is None:
                return None
            copies += more + _per_sample(shape)  # the product, made whole before the statement reads it
        elif batch_sized(shape) and not _batch_first(shape):
            return None
    if fact(statement.kind, "product"):
        copies += sum(_per_sample(shapes.get(symbol, ())) for symbol in statement.operands
                      if fact(kinds.get(symbol, ""), "copied") and batch_sized(shapes.get(symbol, ())))
    return copies


def _batch_first(shape) -> bool:
    return bool(shape) and batch_sized((shape[0],)) and not batch_sized(tuple(shape[1:]))


def _per_sample(shape) -> int:
    """Entries per sample of an array with the batch as its first axis (all of them, for one without it)."""
    sizes = [d for d in shape if not batch_sized((d,))]
    return math.prod(int(d) for d in sizes) if all(isinstance(d, (int, sp.Integer)) for d in sizes) else 0
