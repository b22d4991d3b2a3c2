"""From derived Values to an ordered list of statements: named intermediates, computed once.

Readable names come first: every labelled expression (z0, h1, dz1, ...) that appears
becomes one statement. SymPy's `cse` then names whatever else is shared. A
statement is emitted just before its first use, so each function computes only
what its outputs need, and in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from .graph import Graph, Tensor
from .shapes import N, batch_sized, broadcast, dims_at
from .simplify import replace_structurally


@dataclass
class Statement:
    name: str
    kind: str  # expr | einsum | sum | max | onehot | output
    expr: sp.Expr | None = None  # expr, output
    tensor: Tensor | None = None  # einsum, sum, max, onehot (operands already rewritten)
    operands: tuple[sp.Expr, ...] = ()
    shape: tuple = ()
    label: bool = False  # a named step of the derivation (z0, dz1, ...), not a helper
    computed_again: bool = False  # a long value computed again for a late read: code computes it in place
    broadcast: bool = False  # output: the expression must be broadcast to `shape`
    broadcast_operands: tuple[bool, ...] = ()  # tensor: which operands must be broadcast to their shapes


@dataclass
class Program:
    statements: list[Statement]
    outputs: list[Statement]  # kind "output", in order
    uses_batch_size: bool = False
    shapes: dict = field(default_factory=dict)  # every name's shape as computed (before any broadcast)
    planned: bool = False  # plan_memory has run


def schedule(graph: Graph, outputs: list[tuple[str, sp.Expr, tuple]]) -> Program:
    """Statements computing `outputs`, given as (name, expression, shape)."""
    needed = _needed_tensors(graph, [expr for _, expr, _ in outputs])
    labels = _labels(graph, needed, outputs)
    steps = _steps_from_outputs(labels)
    labels = {symbol: steps(expr) for symbol, expr in labels.items()}
    relabel = _relabeller(labels)

    definitions = {symbol: relabel(expr, exclude=symbol) for symbol, expr in labels.items()}
    operand_exprs = [relabel(steps(op.expr)) for t in needed for op in t.operands]
    output_exprs = [relabel(steps(expr)) for _, expr, _ in outputs]

    exprs = list(definitions.values()) + operand_exprs + output_exprs
    replacements, reduced = sp.cse(exprs, symbols=_fresh_symbols(graph, labels), order="none", list=True,
                                ignore=(N,))  # 1/N is cheaper inline than as a name
    temps = {}
    for symbol, definition in replacements:  # one operation is clearer written out than named
        definition = definition.xreplace(temps)
        temps[symbol] = definition
    cheap = {s: d for s, d in temps.items() if _cheap(d)}
    temps = {s: d for s, d in temps.items() if s not in cheap}
    reduced = [_inline(e, cheap) for e in reduced]
    temps = {s: _inline(d, cheap) for s, d in temps.items()}
    k = len(definitions)
    definitions = dict(zip(definitions, reduced[:k], strict=True))
    operand_exprs, output_exprs = reduced[k:k + len(operand_exprs)], reduced[k + len(operand_exprs):]

    named = {**{s: ("label", e) for s, e in definitions.items()}, **{s: ("temp", e) for s, e in temps.items()}}
    statements: list[Statement] = []
    emitted: set[sp.Symbol] = {t.symbol for t in graph.tensors.values() if t.op in ("input", "target", "param")}

    def require(expr: sp.Expr) -> None:
        for symbol in sorted(expr.free_symbols, key=sp.default_sort_key):
            if symbol in emitted or symbol not in named:
                continue
            kind, definition = named[symbol]
            require(definition)
            emitted.add(symbol)
            statements.append(Statement(symbol.name, "expr", definition, label=kind == "label"))

    cursor = iter(operand_exprs)
    for tensor in needed:
        operands = tuple(next(cursor) for _ in tensor.operands)
        for operand in operands:
            require(operand)
        statements.append(Statement(tensor.name, tensor.op, tensor=tensor, operands=operands, shape=tensor.shape))
        emitted.add(tensor.symbol)
    final = []
    for (name, original, shape), expr in zip(outputs, output_exprs, strict=True):
        require(expr)
        final.append(Statement(name, "output", expr, shape=shape, broadcast=graph.shape_of(original) != shape))

    program = Program(statements, final)
    program.shapes = {t.symbol: t.shape for t in graph.tensors.values()}
    for statement in statements:
        if statement.kind == "expr":
            program.shapes[sp.Symbol(statement.name, real=True)] = broadcast(
                *(program.shapes.get(s, ()) for s in statement.expr.free_symbols))
    for output in final:  # as computed: a label can turn out a constant (exp(a - a) is 1) once CSE is done
        output.broadcast = broadcast(*(program.shapes.get(s, ()) for s in output.expr.free_symbols)) != output.shape
    for statement in statements:  # an operand that is a constant as computed is printed broadcast to its shape
        if statement.tensor is not None:
            statement.broadcast_operands = tuple(  # a number where an array is read is made one (0.1.reshape fails)
                broadcast(*(program.shapes.get(s, ()) for s in op.free_symbols)) != value.shape or op.is_number
                for op, value in zip(statement.operands, statement.tensor.operands, strict=True))
    widened = [value.shape for s in statements if s.tensor is not None
               for value, wide in zip(s.tensor.operands, s.broadcast_operands, strict=True) if wide]
    program.uses_batch_size = any(N in s.free_symbols for s in expressions(program)) or \
        any(s.broadcast and batch_sized(s.shape) for s in final) or any(batch_sized(shape) for shape in widened)
    return program


def plan_memory(program: Program, fused_softmax: bool = False) -> Program:
    """The program as code runs it, holding less at once (the document keeps the program as derived):
    - a small reduction of batch-sized arrays (a bias's gradient) runs as soon as they exist, so that they can
      be freed there;
    - a number that scales a product scales its smaller operand instead: c·(q kᵀ) as (c·q) kᵀ, so that the
      product's array takes what is added to it (a mask) in place;
    - a factor constant along a sum's axes multiplies where the sum is read, where it often cancels
      (softmax's backward: Σ(a·da·s)/s is Σ(a·da), and s is freed after the forward pass);
    - `fused_softmax` (torch): a softmax the graph builds is one call of the library's softmax or log-softmax;
    - where q = e/s is computed and q and s are read later anyway, a later e reads q·s (a softmax's
      exponentials are freed after the forward pass);
    - a value read early and late that is several times larger than every batch-sized value it is computed
      from, those being kept until then anyway, is computed again from them where it is read late: attention's
      probabilities (N·H·S² from queries and keys of N·H·S·D/H, and the row max and sum), as flash attention's
      backward pass does;
    - an elementwise value read early (forward) and late (backward), whose inputs are kept until then anyway, is
      recomputed where it is read late, and freed after its first read: a layer norm's x̂ = x_c·rstd, GELU's
      erf(z/√2) and its output (autograd keeps only z)."""
    if program.planned:
        return program
    statements = _reductions_early([replace(s) for s in program.statements])
    outputs = [replace(s) for s in program.outputs]
    shapes = dict(program.shapes)
    uses = _Uses(statements, outputs)
    _scale_smaller_operands(uses)
    _read_quotients(uses)
    _factor_out_of_sums(uses, shapes)
    if fused_softmax:
        for statement in [s for s in uses.statements if s.kind == "max"]:
            uses = _fuse_softmax(uses, statement, shapes)
    uses = _recompute_outgrown(uses, shapes)
    _recompute_late_reads(uses, shapes)
    return replace(program, statements=uses.statements, outputs=outputs, shapes=shapes, planned=True)


def reads(statement: Statement) -> set:
    """The symbols a statement reads."""
    return _symbols(statement.expr, statement.operands)


def _symbols(expr: sp.Expr | None, operands: tuple) -> set:
    return (expr.free_symbols if expr is not None else set()).union(*(op.free_symbols for op in operands))


def _unused(stem: str, taken: set) -> str:
    """stem, or stem1, stem2, ...: the first not in `taken`, which it joins."""
    name = next(n for n in (f"{stem}{i or ''}" for i in range(len(taken) + 1)) if n not in taken)
    taken.add(name)
    return name


def _value(statement: Statement) -> sp.Symbol:
    return statement.tensor.symbol if statement.kind == "map" else sp.Symbol(statement.name, real=True)


class _Uses:
    """What each statement reads, computed once and kept current as statements are rewritten."""

    def __init__(self, statements: list[Statement], outputs: list[Statement]):
        self.statements, self.outputs = statements, outputs
        self._reads = {id(s): reads(s) for s in statements + outputs}
        self.output_reads = set().union(*(self._reads[id(o)] for o in outputs))

    def of(self, statement: Statement) -> set:
        return self._reads[id(statement)]

    def rewrite(self, statement: Statement, mapping: dict) -> None:
        statement.expr, statement.operands = _rewritten(statement, mapping)
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


def _rewritten(statement: Statement, mapping: dict) -> tuple:
    """(expr, operands) of a statement with `mapping` applied."""
    expr = statement.expr.xreplace(mapping) if statement.expr is not None else None
    return expr, tuple(op.xreplace(mapping) for op in statement.operands)


def _reads_rewritten(statement: Statement, mapping: dict) -> set:
    return _symbols(*_rewritten(statement, mapping))


def _constant_along(shape: tuple, axes: tuple, ndim: int) -> bool:
    return all(dims_at(shape, axis, ndim) in (None, 1) for axis in axes)


def _scale_smaller_operands(uses: _Uses) -> None:
    for statement in uses.statements:
        value = sp.Symbol(statement.name, real=True)
        readers = uses.readers(value) if statement.kind == "einsum" and len(statement.operands) == 2 else []
        if len(readers) != 1 or readers[0].kind != "expr" or readers[0].expr.count(value) != 1:
            continue
        scaled = [e for e in sp.preorder_traversal(readers[0].expr) if e.is_Mul and value in e.args and
                  all(a.is_number for a in e.args if a != value)]
        sizes = [_elements(operand.shape) for operand in statement.tensor.operands]
        if len(scaled) != 1 or min(sizes) >= _elements(statement.shape):
            continue
        smaller = sizes.index(min(sizes))
        statement.operands = tuple(scaled[0] / value * operand if k == smaller else operand
                                   for k, operand in enumerate(statement.operands))
        uses.rewrite(statement, {})
        uses.rewrite(readers[0], {scaled[0]: value})


def _factor_out_of_sums(uses: _Uses, shapes: dict) -> None:
    """Σ_k(c·x) = c·Σ_k(x) for c constant along k, where it reads no more than before wherever the sum is read."""
    for i, statement in enumerate(uses.statements):
        operand = statement.operands[0] if statement.kind == "sum" else None
        ndim = len(statement.tensor.operands[0].shape) if operand is not None else 0
        if operand is None or not operand.is_Mul or len(statement.shape) != ndim:  # keepdims sums only
            continue
        outer = [f for f in operand.args if f.free_symbols and
                 all(_constant_along(shapes.get(s, ()), statement.tensor.axes, ndim) for s in f.free_symbols)]
        inner = operand.func(*(f for f in operand.args if f not in outer))
        full = statement.tensor.operands[0].shape  # the factors left must still make the whole array
        if not outer or not inner.free_symbols or broadcast(*(shapes.get(s, ()) for s in inner.free_symbols)) != full:
            continue
        value = sp.Symbol(statement.name, real=True)
        mapping = {value: value * sp.Mul(*outer)}
        readers = uses.readers(value, i + 1)
        if all(r.kind in ("expr", "output") and _reads_rewritten(r, mapping) <= uses.of(r) for r in readers):
            statement.operands = (inner, *statement.operands[1:])
            uses.rewrite(statement, {})
            for reader in readers:
                uses.rewrite(reader, mapping)


def _fuse_softmax(uses: _Uses, max_statement: Statement, shapes: dict) -> _Uses:
    """m = max z, shifted = z − m, e = exp(shifted), s = Σe (over one axis) as one softmax call: log-softmax ℓ,
    read as shifted = ℓ + log s and e = s·exp(ℓ); or the softmax exp(ℓ) itself where only that is read. Done
    only where s then cancels everywhere (p = e/s is exp(ℓ), log s − shifted is −ℓ)."""
    statements, z, m = uses.statements, max_statement.operands[0], sp.Symbol(max_statement.name, real=True)
    axes, ndim = max_statement.tensor.axes, len(max_statement.tensor.operands[0].shape)

    def find(kind, match):
        return next((s for s in statements if s.kind == kind and match(s)), None)

    shifted_statement = find("expr", lambda s: s.expr == z - m)
    shifted = sp.Symbol(shifted_statement.name, real=True) if shifted_statement else None
    e_statement = shifted and find("expr", lambda s: s.expr == sp.exp(shifted))
    e = sp.Symbol(e_statement.name, real=True) if e_statement else None
    s_statement = e and find("sum", lambda s: s.operands == (e,) and s.tensor.axes == axes and
                             s.shape == max_statement.shape)
    if len(axes) != 1 or len(max_statement.shape) != ndim or s_statement is None:
        return uses
    group = (max_statement, shifted_statement, e_statement, s_statement)
    total = sp.Symbol(s_statement.name, real=True)
    log = sp.Symbol(_unused("logp", {s.name for s in statements}), real=True)
    mapping = {shifted: log + sp.log(total), e: total * sp.exp(log)}
    rest = [s for s in statements + uses.outputs if all(s is not g for g in group)]
    if any(_reads_rewritten(s, mapping) & {m, shifted, e, total} for s in rest):
        return uses
    for statement in rest:
        uses.rewrite(statement, mapping)
    readers = [s for s in rest if log in uses.of(s)]
    softmax, hidden = sp.exp(log), sp.Dummy()
    only_exp = not any(log in _reads_rewritten(r, {softmax: hidden}) for r in readers)
    fused = Statement(log.name, "log_softmax", tensor=max_statement.tensor, operands=(z,),
                      shape=shapes[shifted], broadcast_operands=max_statement.broadcast_operands)
    for kind, value in [("softmax", softmax)] * only_exp + [("log_softmax", log)]:
        named = next((s for s in readers if s.kind == "expr" and s.expr == value), None)
        if named is not None:  # the step the graph names (p, or a LogSoftmax layer's output) is the call
            fused.name, fused.kind = named.name, kind
            for reader in readers:
                uses.rewrite(reader, {value: sp.Symbol(named.name, real=True)})
            rest = [s for s in rest if s is not named]
            break
    shapes[sp.Symbol(fused.name, real=True)] = shapes[shifted]
    where, kept = statements.index(max_statement), {id(s) for s in rest}
    return _Uses([s for s in statements[:where] if id(s) in kept] + [fused] +
                 [s for s in statements[where:] if id(s) in kept], uses.outputs)


def _in_place_of(value: sp.Symbol, definition: sp.Expr, shapes: dict) -> bool:
    """Whether `definition` may stand where `value` is read: it has the value's shape as it is (a constant, or a
    value broadcast to a wider shape, would not)."""
    return bool(definition.free_symbols) and \
        broadcast(*(shapes.get(s, ()) for s in definition.free_symbols)) == shapes.get(value)


RECOMPUTE_BUDGET = 16  # operations: a value costlier than this to compute again is kept instead


def _recompute_late_reads(uses: _Uses, shapes: dict) -> None:
    last = uses.last()
    expanded: dict[sp.Symbol, sp.Expr] = {}  # values recomputed late, as expressions of what is kept
    statements, taken = uses.statements, {s.name for s in uses.statements}
    for statement in statements:  # a statement inserted below comes later in the list, and is read once
        if statement.kind not in ("expr", "map"):
            continue
        value = _value(statement)
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
                again = sp.Symbol(_unused(f"{value.name}_again", taken), real=True)
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


def _recompute_outgrown(uses: _Uses, shapes: dict) -> _Uses:
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
            name = _unused(f"{step.name}_again", taken)
            symbol, old = sp.Symbol(name, real=True), sp.Symbol(step.name, real=True)
            copy = replace(step, name=name, tensor=step.tensor and replace(step.tensor, symbol=symbol))
            copy.expr, copy.operands = _rewritten(copy, renamed)
            renamed[old], shapes[symbol] = symbol, shapes.get(old)
            again.append(copy)
        for reader in readers[1:]:
            uses.rewrite(reader, {value: renamed[value]})
        uses = _Uses(uses.statements[:late] + again + uses.statements[late:], uses.outputs)
    return uses


def _recomputation(uses: _Uses, statement: Statement, late: int, shapes: dict) -> list[Statement] | None:
    """The statements that compute `statement` again at position `late` from values kept until then anyway (or
    small ones, kept longer), in order; None where that is more than a few steps, reads a layer's weights in a
    product, or would not save much memory."""
    last, produced = uses.last(), {sp.Symbol(s.name, real=True): s for s in uses.statements}
    size = _elements(shapes.get(sp.Symbol(statement.name, real=True), ()))
    chain: list[Statement] = []
    leaves: set[sp.Symbol] = set()

    def small(symbol):  # kept longer at little cost: a softmax's row max and sum, flash attention's statistics
        return not batch_sized(shapes.get(symbol, ())) or _elements(shapes.get(symbol, ())) * 8 <= size

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
    kept = [_elements(shapes.get(s, ())) for s in leaves if batch_sized(shapes.get(s, ()))]
    return chain if kept and max(kept) * RECOMPUTE_GROWTH <= size else None


def _elements(shape: tuple) -> int:
    return int(sp.Mul(*shape).subs(N, 1024))


def _reductions_early(statements: list[Statement]) -> list[Statement]:
    out: list[Statement] = []
    where: dict[sp.Symbol, int] = {}  # symbol -> its statement's position in out
    for statement in statements:
        small = statement.kind in ("sum", "einsum") and not batch_sized(statement.shape) and \
            any(batch_sized(value.shape) for value in statement.tensor.operands)
        at = max((where[s] + 1 for s in reads(statement) if s in where), default=0) if small else len(out)
        if at < len(out):
            where = {symbol: i + (i >= at) for symbol, i in where.items()}
        out.insert(at, statement)
        where[sp.Symbol(statement.name, real=True)] = at
    return out


def _read_quotients(uses: _Uses) -> None:
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


def _cheap(expr: sp.Expr) -> bool:
    """One arithmetic operation on names or numbers, like m - z2, 1/N or √2·z/2 (a number times a name); or a
    plain number, which the printers write as one float."""
    scaled = expr.is_Mul and sum(1 for a in expr.args if not a.is_number) == 1 and \
        any(a.is_Symbol for a in expr.args)
    return (sp.count_ops(expr) <= 1 and not expr.atoms(sp.Function)) or not expr.free_symbols or scaled


def _inline(expr: sp.Expr, temps: dict) -> sp.Expr:
    return expr.xreplace(temps) if temps and expr.free_symbols & temps.keys() else expr


def _needed_tensors(graph: Graph, exprs: list[sp.Expr]) -> list[Tensor]:
    """Computed tensors the expressions depend on, in creation (dependency) order."""
    seen: set[sp.Symbol] = set()
    stack = [s for e in exprs for s in e.free_symbols if s in graph.tensors]
    while stack:
        symbol = stack.pop()
        if symbol in seen:
            continue
        seen.add(symbol)
        stack.extend(s for op in graph.tensor(symbol).operands for s in op.expr.free_symbols if s in graph.tensors)
    return [t for t in graph.tensors.values() if t.symbol in seen and t.op not in ("input", "target", "param")]


def _labels(graph: Graph, needed: list[Tensor], outputs) -> dict[sp.Symbol, sp.Expr]:
    """Labelled expressions whose tensors are all available: symbol -> expression."""
    available = {t.symbol for t in needed} | {t.symbol for t in graph.tensors.values()
                                                if t.op in ("input", "target", "param")}
    output_names = {name for name, _, _ in outputs}
    return {sp.Symbol(name, real=True): expr for expr, name in graph.labels.items()
            if name not in output_names and expr.free_symbols <= available | {N}}


def positive_part_of(expr: sp.Expr):
    """z, when expr is max(0, z) (relu's value); None otherwise."""
    if isinstance(expr, sp.Max) and len(expr.args) == 2 and 0 in expr.args:
        return expr.args[1] if expr.args[0] == 0 else expr.args[0]
    return None


def _steps_from_outputs(labels: dict[sp.Symbol, sp.Expr]):
    """H(z) → H(h) where h = max(0, z) is named (h > 0 exactly where z > 0): the backward pass then reads
    relu's output, which it keeps anyway, and z can be freed once h is computed."""
    relus = {positive_part_of(d): d for d in labels.values() if positive_part_of(d) is not None}

    def rewrite(expr: sp.Expr) -> sp.Expr:
        if not relus or not expr.has(sp.Heaviside):
            return expr
        return expr.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1] == 0 and e.args[0] in relus,
                            lambda e: sp.Heaviside(relus[e.args[0]], 0))

    return rewrite


def _relabeller(labels: dict[sp.Symbol, sp.Expr]):
    """Rewrite an expression through the labels, the latest (outermost) first.

    A label's own definition is rewritten only through labels made before it: otherwise
    h1 = z0 + 1 would turn z0 = b0 + mm0 into h1 - 1, and each would be defined by the other.
    """
    position = {symbol: i for i, symbol in enumerate(labels)}
    ordered = [(symbol, definition, frozenset(definition.free_symbols))
               for symbol, definition in reversed(labels.items())]
    # Index each label by its rarest symbol: an expression only needs the labels keyed by its own symbols.
    counts: dict[sp.Symbol, int] = {}
    for _, _, needs in ordered:
        for symbol in needs:
            counts[symbol] = counts.get(symbol, 0) + 1
    by_key: dict[sp.Symbol, list[int]] = {}
    for i, (_, _, needs) in enumerate(ordered):
        if needs:
            by_key.setdefault(min(needs, key=lambda s: (counts[s], s.name)), []).append(i)

    def relabel(expr: sp.Expr, exclude=None) -> sp.Expr:
        present = expr.free_symbols
        limit = position.get(exclude, len(position))
        for i in sorted({i for s in present for i in by_key.get(s, ())}):
            symbol, definition, needs = ordered[i]
            if position[symbol] >= limit or not needs <= present:
                continue
            new = replace_structurally(expr, definition, symbol)
            if new != expr:
                expr, present = new, new.free_symbols
        return expr

    return relabel


def _fresh_symbols(graph: Graph, labels):
    taken = {s.name for s in graph.tensors} | {s.name for s in labels}
    i = 0
    while True:
        name = f"tmp{i}"
        i += 1
        if name not in taken:
            yield sp.Symbol(name, real=True)


def expressions(program: Program):
    """Every expression a program prints: statement expressions, operands and outputs."""
    for s in program.statements + program.outputs:
        if s.expr is not None:
            yield s.expr
        yield from s.operands


def inlinable(program: Program, code: bool = True) -> set[sp.Symbol]:
    """Einsum results used exactly once are printed in place: z0 = x @ w0.T + b0.

    In code, a gradient that is a contraction gets its own line, dw0 = dz0.T @ x, as soon as it can be
    computed, so that what it reads can be freed early."""
    uses: dict[sp.Symbol, int] = {}
    for expr in expressions(program):
        for symbol in expr.free_symbols:
            uses[symbol] = uses.get(symbol, 0) + expr.count(symbol)
    returned = {o.expr for o in program.outputs if o.expr.is_Symbol} if code else set()
    return {s.tensor.symbol for s in program.statements
            if s.kind == "einsum" and uses.get(s.tensor.symbol, 0) == 1 and s.tensor.symbol not in returned}
