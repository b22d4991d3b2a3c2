"""What the stages hand on: the schedule's Program of statements (one per named value, in dependency order), and the
memory plan's list of Steps (the lines of code, backend-neutral), which the printers spell."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sympy as sp

from .graph import Tensor
from .ops.registry import fact


@functools.cache
def _symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


@dataclass(eq=False)  # a statement is itself: two that read alike are two (a value computed again)
class Statement:
    name: str
    kind: str  # expr | call | output, or the primitive op that computes it (the tensor's op)
    expr: sp.Expr | None = None  # expr, output
    tensor: Tensor | None = None  # a primitive's (operands already rewritten)
    operands: tuple[sp.Expr, ...] = ()
    shape: tuple = ()
    label: bool = False  # a named step of the derivation (z0, dz1, ...), not a helper
    computed_again: bool = False  # a value computed again for a late read (the plan's), rather than kept
    broadcast: bool = False  # output: the expression must be broadcast to `shape`
    broadcast_operands: tuple[bool, ...] = ()  # tensor: which operands must be broadcast to their shapes
    op: str = ""  # call: the op whose one call of the backend computes it (registry.call)

    @property
    def symbol(self) -> sp.Symbol:
        return _symbol(self.name)


@dataclass
class Program:
    statements: list[Statement]
    outputs: list[Statement]  # kind "output", in order
    uses_batch_size: bool = False
    shapes: dict = field(default_factory=dict)  # every name's shape as computed (before any broadcast)


@dataclass(eq=False)
class Step:
    """One line of code, as the memory plan decides it; the printers only spell it.

    assign: name = the value of `statement` (or of `expr`, a part or a factor of one);
    inline: a contraction, printed in place of its one read (no line of its own);
    update: name op= expr, into name's own array (`mask`: expr is a step H(u), and u's array may be overwritten
        where `dying`);
    apply: name = function(source, *more) into source's own array (np.exp(a, out=a)); source defaults to name;
    alias: name = source, taking over an array read for the last time;
    view: name = name in statement's shape (a rearrangement of an array computed in place);
    free: del names;
    note: the value `name` is computed again from here, rather than kept (a comment for the reader).
    An assign with `chunk` computes its value a chunk of samples at a time, into rows of its array, or summed.
    `of` is the statement the step computes, or computes a part of: what an equation of the document links to.
    """

    kind: str
    name: str = ""
    of: str = ""
    statement: Statement | None = None
    expr: sp.Expr | None = None
    operator: str = ""
    function: str = ""
    more: tuple = ()
    source: str = ""
    names: tuple = ()
    mask: bool = False
    dying: bool = False
    again: bool = False  # computed again rather than kept (the plan's trade of time for memory)
    chunk: int = 0  # assign: computed this many samples at a time (its copies are large; plan/chunks.py)
    summed: bool = False  # ... and the chunks' results summed (a gradient summed over the samples)


@dataclass
class Plan:
    """A program as code runs it: the program as planned (its outputs are returned), and its steps."""

    program: Program
    steps: list[Step]
    nonnegative: set = field(default_factory=set)  # values ≥ 0 by their definition (max(z, 0)): H(h) is sign(h)


def reads(statement: Statement) -> set:
    """The symbols a statement reads."""
    return symbols_of(statement.expr, statement.operands)


def symbols_of(expr: sp.Expr | None, operands: tuple) -> set:
    return (expr.free_symbols if expr is not None else set()).union(*(op.free_symbols for op in operands))


def expressions(program: Program):
    """Every expression a program prints: statement expressions, operands and outputs."""
    for s in program.statements + program.outputs:
        if s.expr is not None:
            yield s.expr
        yield from s.operands


def inlinable(program: Program, code: bool = True) -> set[sp.Symbol]:
    """Products of arrays used exactly once are printed in place: z0 = x @ w0.T + b0 (a contraction computed again by
    the plan is counted on its own: each is read once).

    In code, a gradient that is a contraction gets its own line, dw0 = dz0.T @ x, as soon as it can be
    computed, so that what it reads can be freed early."""
    uses: dict[sp.Symbol, list[int]] = {}  # product -> the reads of each of its definitions
    for statement in program.statements + program.outputs:
        for expr in (statement.expr, *statement.operands):
            for symbol in expr.free_symbols if expr is not None else ():
                if symbol in uses:
                    uses[symbol][-1] += expr.count(symbol)
        if fact(statement.kind, "product"):
            uses.setdefault(statement.tensor.symbol, []).append(0)
    returned = {o.expr for o in program.outputs if o.expr.is_Symbol} if code else set()
    return {symbol for symbol, counts in uses.items() if set(counts) == {1} and symbol not in returned}


def times_sum(expr: sp.Expr, arrays) -> tuple | None:
    """(c, a, b, k) where expr is c·a·(b + k), a and b among `arrays`, c and k numbers (k ≠ 0); else None. It is
    c·k·(a + a·b/k): one fused multiply-add and a scale (z·(1 + erf(z/√2))/2), where a chain makes b + k,
    then multiplies by a, then by c."""
    if not isinstance(expr, sp.Expr):  # a mask's condition
        return None
    c, rest = expr.as_coeff_Mul()
    factors = sp.Mul.make_args(rest)
    if len(factors) != 2:
        return None
    for total, a in (factors, factors[::-1]):
        if total.is_Add and len(total.args) == 2 and a.is_Symbol and a in arrays:
            k, b = total.as_coeff_Add()
            if k != 0 and b.is_Symbol and b in arrays:
                return c, a, b, k
    return None
