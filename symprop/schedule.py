"""From derived Values to an ordered list of statements: named intermediates, computed once.

Readable names come first: every labelled expression (z0, h1, dz1, ...) that appears
becomes one statement. SymPy's `cse` then names whatever else is shared. A
statement is emitted just before its first use, so each function computes only
what its outputs need, and in dependency order.
"""

from __future__ import annotations

import sympy as sp

from .graph import Graph, Tensor
from .program import Program, Statement, expressions, reads
from .shapes import N, batch_sized, broadcast
from .simplify import positive_part_of, replace_structurally


def schedule(graph: Graph, outputs: list[tuple[str, sp.Expr, tuple]]) -> Program:
    """Statements computing `outputs`, given as (name, expression, shape)."""
    needed = _needed_tensors(graph, [expr for _, expr, _ in outputs])
    labels = _labels(graph, needed, outputs)
    steps = _steps_from_outputs(labels)
    labels = {symbol: steps(expr) for symbol, expr in labels.items()}
    relabel = relabeller(labels)

    definitions = {symbol: relabel(expr, exclude=symbol) for symbol, expr in labels.items()}
    operand_exprs = [relabel(steps(op.expr)) for t in needed for op in t.operands]
    output_exprs = [relabel(steps(expr)) for _, expr, _ in outputs]

    exprs = list(definitions.values()) + operand_exprs + output_exprs
    replacements, reduced = sp.cse(exprs, symbols=_fresh_symbols(graph, labels), order="none", list=True,
                                ignore=(N,))  # 1/N is cheaper inline than as a name
    temps, cheap = {}, {}
    for symbol, definition in replacements:  # in dependency order; one operation is clearer written out than named
        definition = _inline(definition, cheap)
        (cheap if _cheap(definition) else temps)[symbol] = definition
    reduced = [_inline(e, cheap) for e in reduced]
    k = len(definitions)
    definitions = dict(zip(definitions, reduced[:k], strict=True))
    operand_exprs, output_exprs = reduced[k:k + len(operand_exprs)], reduced[k + len(operand_exprs):]

    cursor = iter(operand_exprs)
    operands_of = {tensor: tuple(next(cursor) for _ in tensor.operands) for tensor in needed}
    operands_of, definitions, temps, output_exprs, stored = _fold_stored_temps(operands_of, definitions, temps,
                                                                              output_exprs)
    named = {**{s: ("label", e) for s, e in definitions.items()}, **{s: ("temp", e) for s, e in temps.items()},
             **{t.symbol: ("stored", t) for t in stored}}
    statements: list[Statement] = []
    emitted: set[sp.Symbol] = {t.symbol for t in graph.tensors.values() if t.op in ("input", "target", "param")}

    def emit(tensor: Tensor) -> None:
        for operand in operands_of[tensor]:
            require(operand)
        statements.append(Statement(tensor.name, tensor.op, tensor=tensor, operands=operands_of[tensor],
                                    shape=tensor.shape))
        emitted.add(tensor.symbol)

    def require(expr: sp.Expr) -> None:
        for symbol in sorted(expr.free_symbols, key=sp.default_sort_key):
            if symbol in emitted or symbol not in named:
                continue
            kind, definition = named[symbol]
            if kind == "stored":  # a stored value read through a name CSE gave it: made where first read
                emit(definition)
                continue
            require(definition)
            emitted.add(symbol)
            statements.append(Statement(symbol.name, "expr", definition, label=kind == "label"))

    for tensor in needed:
        if tensor.symbol not in emitted:
            emit(tensor)
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
    program.uses_batch_size = _uses_batch_size(program)
    return program


def _fold_stored_temps(operands_of: dict, definitions: dict, temps: dict, output_exprs: list):
    """A stored value whose whole expression CSE named too (x = a + b, read by a layer norm and as a sum again by the
    next residual) is that name: the other readers read x, and no line says x = tmp10. Returns the four rewritten,
    and the stored values folded so (each made where it is first read)."""
    folded = {}
    for tensor, operands in operands_of.items():
        if tensor.op == "map" and len(operands) == 1 and operands[0] in temps and operands[0] not in folded:
            folded[operands[0]] = tensor
    names = {temp: tensor.symbol for temp, tensor in folded.items()}

    def fold(expr):
        return expr.xreplace(names) if expr.free_symbols & names.keys() else expr

    own = {tensor: (fold(temps[temp]),) for temp, tensor in folded.items()}  # a stored sum inside the next
    operands_of = {tensor: own.get(tensor) or tuple(fold(op) for op in operands)
                   for tensor, operands in operands_of.items()}
    return (operands_of, {symbol: fold(e) for symbol, e in definitions.items()},
            {symbol: fold(e) for symbol, e in temps.items() if symbol not in names},
            [fold(e) for e in output_exprs], set(folded.values()))


def _uses_batch_size(program: Program) -> bool:
    """Whether the code needs N, the batch size: an expression reads it, or an array is made of its shape."""
    widened = [value.shape for s in program.statements if s.tensor is not None
               for value, wide in zip(s.tensor.operands, s.broadcast_operands, strict=True) if wide]
    return any(N in s.free_symbols for s in expressions(program)) or \
        any(s.broadcast and batch_sized(s.shape) for s in program.outputs) or any(batch_sized(x) for x in widened)


def forward_part(program: Program, output: sp.Symbol) -> set[sp.Symbol]:
    """The values of `program` that the network's output (`output`, the forward pass's result) is computed from,
    itself included: its forward pass."""
    produced = {s.symbol: s for s in program.statements}
    part: set[sp.Symbol] = set()
    stack = [output]
    while stack:
        symbol = stack.pop()
        if symbol in part or symbol not in produced:
            continue
        part.add(symbol)
        stack.extend(reads(produced[symbol]))
    return part


def after_forward(program: Program, forward: Program) -> Program | None:
    """What `program` computes after the network's output, reading that output as given (the loss of forward's
    result); None where it reads another value of the forward pass too, or forward returns no named value."""
    (output,) = forward.outputs
    if not output.expr.is_Symbol:
        return None
    part = forward_part(program, output.expr)
    rest = [s for s in program.statements if s.symbol not in part]
    if any(reads(s) & (part - {output.expr}) for s in rest + program.outputs):
        return None
    head = Program(rest, program.outputs, shapes=program.shapes)
    head.uses_batch_size = _uses_batch_size(head)
    return head


def _cheap(expr: sp.Expr) -> bool:
    """One arithmetic operation on names or numbers, like m - z2, 1/N or √2·z/2 (a number times a name); or a
    plain number, which the printers write as one float."""
    scaled = expr.is_Mul and sum(1 for a in expr.args if not a.is_number) == 1 and \
        any(a.is_Symbol for a in expr.args)
    # a + b, read again (a residual stream: x + f(x) into a norm and the next residual): named, one pass saved; a
    # difference (y − t) reads better written out
    summed = expr.is_Add and len(expr.args) > 1 and all(a.is_Symbol for a in expr.args)
    return (sp.count_ops(expr) <= 1 and not expr.atoms(sp.Function) and not summed) or not expr.free_symbols or scaled


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


def _steps_from_outputs(labels: dict[sp.Symbol, sp.Expr]):
    """H(z) → H(h) where h = max(0, z) is named (h > 0 exactly where z > 0): the backward pass then reads
    the positive part's value, which it keeps anyway, and z can be freed once h is computed."""
    relus = {positive_part_of(d): d for d in labels.values() if positive_part_of(d) is not None}

    def rewrite(expr: sp.Expr) -> sp.Expr:
        if not relus or not expr.has(sp.Heaviside):
            return expr
        return expr.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1] == 0 and e.args[0] in relus,
                            lambda e: sp.Heaviside(relus[e.args[0]], 0))

    return rewrite


def relabeller(labels: dict[sp.Symbol, sp.Expr]):
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
