"""What each statement reads, kept current while the plan rewrites statements; the helpers its rules share."""

from __future__ import annotations

import sympy as sp

from ..program import Statement, reads, symbols_of
from ..shapes import N, dims_at
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

    def of(self, statement: Statement) -> set:
        return self._reads[id(statement)]

    def rewrite(self, statement: Statement, mapping: dict) -> None:
        statement.expr, statement.operands = rewritten(statement, mapping)
        self._reads[id(statement)] = reads(statement)

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




def elements(shape: tuple) -> int:
    """An array's size, for comparisons: the batch axis counted as 1024."""
    return int(sp.Mul(*shape).subs(N, 1024))


def nonnegative(program) -> set:
    """The values known to be ≥ 0 from their definition alone: h = max(z, 0)."""
    return {s.symbol for s in program.statements if s.expr is not None and positive_part_of(s.expr) is not None}
