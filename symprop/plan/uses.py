"""What each statement reads, kept current while the plan rewrites statements; the helpers its rules share."""

from __future__ import annotations

import sympy as sp

from ..ops.registry import fact
from ..program import Program, Statement, inlinable, reads, symbols_of
from ..shapes import N, batch_sized, dims_at
from ..simplify import positive_part_of


def unused(stem: str, taken: set) -> str:
    """stem, or stem1, stem2, ...: the first not in `taken`, which it joins."""
    name = next(n for n in (f"{stem}{i or ''}" for i in range(len(taken) + 1)) if n not in taken)
    taken.add(name)
    return name


def value_of(statement: Statement) -> sp.Symbol:
    return statement.tensor.symbol if statement.kind == "map" else sp.Symbol(statement.name, real=True)


class Uses:
    """What each statement reads, computed once and kept current as statements are rewritten."""

    def __init__(self, statements: list[Statement], outputs: list[Statement]):
        self.statements, self.outputs = statements, outputs
        self._reads = {id(s): reads(s) for s in statements + outputs}
        self.output_reads = set().union(*(self._reads[id(o)] for o in outputs))
        self._index = None

    def of(self, statement: Statement) -> set:
        return self._reads[id(statement)]

    def rewrite(self, statement: Statement, mapping: dict) -> None:
        statement.expr, statement.operands = rewritten(statement, mapping)
        self._reads[id(statement)] = reads(statement)
        self._index = None

    def insert(self, position: int, statement: Statement) -> None:
        self.statements.insert(position, statement)
        self._reads[id(statement)] = reads(statement)
        self._index = None

    def readers_after(self, index: int, value: sp.Symbol) -> list[Statement]:
        """The statements after position `index` that read `value` (outputs last), up to one that makes it again."""
        if self._index is None:  # symbol -> positions of its readers; name -> positions of its statements
            readers: dict[sp.Symbol, list[int]] = {}
            made: dict[str, list[int]] = {}
            for i, statement in enumerate(self.statements + self.outputs):
                for symbol in self._reads[id(statement)]:
                    readers.setdefault(symbol, []).append(i)
                if statement.kind != "output":
                    made.setdefault(statement.name, []).append(i)
            self._index = readers, made
        readers, made = self._index
        end = next((i for i in made.get(value.name, ()) if i > index), len(self.statements) + len(self.outputs))
        every = self.statements + self.outputs
        return [every[i] for i in readers.get(value, ()) if index < i <= end]

    def readers(self, symbol: sp.Symbol, start: int = 0) -> list[Statement]:
        return [s for s in self.statements[start:] + self.outputs if symbol in self.of(s)]

    def last(self) -> dict:
        """symbol -> the position of the statement that reads it last (outputs after every statement)."""
        last = {}
        for i, statement in enumerate(self.statements + self.outputs):
            for symbol in self._reads[id(statement)]:
                last[symbol] = i
        return last


def rewritten(statement: Statement, mapping: dict) -> tuple:
    """(expr, operands) of a statement with `mapping` applied."""
    expr = statement.expr.xreplace(mapping) if statement.expr is not None else None
    return expr, tuple(op.xreplace(mapping) for op in statement.operands)


def reads_rewritten(statement: Statement, mapping: dict) -> set:
    return symbols_of(*rewritten(statement, mapping))


def constant_along(shape: tuple, axes: tuple, ndim: int) -> bool:
    return all(dims_at(shape, axis, ndim) in (None, 1) for axis in axes)


def live_profile(uses: Uses, shapes: dict) -> list[int]:
    """The elements held at each statement (of batch-sized arrays, the batch counted as 1024): each value from the
    statement that makes it to its last read, or to the end where it is returned; a value made again (the plan's)
    anew from there; a contraction printed in place of its one read is held there only."""
    statements = uses.statements
    inlined = inlinable(Program(statements, uses.outputs))
    deferred: dict[sp.Symbol, set] = {}  # an inlined contraction's operands are read where it is read
    start: dict[sp.Symbol, int] = {}
    end: dict[sp.Symbol, int] = {}
    intervals = []

    def through(symbols: set) -> set:
        return (symbols - deferred.keys()) | set().union(*(deferred[s] for s in symbols & deferred.keys()))

    for i, statement in enumerate(statements):
        read = through(uses.of(statement))
        if fact(statement.kind, "product") and statement.tensor.symbol in inlined:
            deferred[statement.tensor.symbol] = read
            continue
        for symbol in read & start.keys():
            end[symbol] = i
        value = value_of(statement)
        if value in start:
            intervals.append((value, start[value], end[value]))
        start[value] = end[value] = i
    returned = through(uses.output_reads)
    intervals += [(v, start[v], len(statements) if v in returned else end[v]) for v in start]
    profile = [0] * (len(statements) + 1)
    for value, first, last in intervals:
        size = elements(shapes.get(value, ())) if batch_sized(shapes.get(value, ())) else 0
        for i in range(first, last + 1):
            profile[i] += size
    return profile


def elements(shape: tuple) -> int:
    """An array's size, for comparisons: the batch axis counted as 1024."""
    return int(sp.Mul(*shape).subs(N, 1024))


def nonnegative(program) -> set:
    """The values known to be ≥ 0 from their definition alone: h = max(z, 0)."""
    return {s.symbol for s in program.statements if s.expr is not None and positive_part_of(s.expr) is not None}
