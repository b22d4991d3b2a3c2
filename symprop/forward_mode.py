"""Stage 3, derive, forward mode: one tangent per tensor, the directional derivative of every value along given
tangents of some tensors (the seeds).

Between tensors, the chain rule is `sympy.diff` of the fused elementwise expression, Σ_u ∂e/∂u · u̇, u each named value
it reads (a book's z, h, p, whose tangents ż, ḣ, ṗ it names) or tensor. Across tensors it follows from each
primitive's definition: its `jvp`, in its own module of symprop/ops/, found in the registry by the
tensor's op. Run over the gradient program that reverse mode made, it gives second derivatives (second_order.py).
"""

from __future__ import annotations

import sympy as sp

from .graph import Graph, Tensor, Value
from .ops.registry import lookup
from .simplify import derivative, replace_structurally, tidy


def tangents(graph: Graph, seeds: dict[Tensor, Value], values: list[Value]) -> list[Value]:
    """The tangent of each of `values` (Values over graph tensors) when each seed tensor moves along its Value; a
    value that no seed moves has tangent 0."""
    known: dict[sp.Symbol, Value] = {tensor.symbol: along for tensor, along in seeds.items()}
    read_back = {t.symbol: t.read_back_as for t in graph.tensors.values() if t.read_back_as is not None}

    def moves(expr: sp.Expr) -> bool:
        return any(s in known for s in graph.tensor_symbols(expr))

    def of(value: Value, stored: Tensor | None = None) -> Value | None:
        """Σ_u ∂e/∂u · u̇ for the expression e of `value`, u its named parts (a book's z, h, p: their tangents named
        ż, ḣ, ṗ, each derived once) and the tensors it reads outside them. Where e is stored (a map tensor), its
        derivative reads the stored value, as reverse mode's does."""
        expr = value.expr
        parts = {part: sp.Dummy(real=True) for part in _named_parts(graph, expr, moves)}
        reduced = expr.xreplace(parts)
        back = {dummy: part for part, dummy in parts.items()}
        along = {dummy: labelled(part) for part, dummy in parts.items()}
        along.update({symbol: known[symbol].expr for symbol in graph.tensor_symbols(reduced) if symbol in known})
        terms = []
        for symbol, moved in along.items():
            if moved == 0:
                continue
            local = derivative(reduced, symbol).xreplace(back)
            if stored is not None:
                local = replace_structurally(local, expr, stored.symbol)
            terms.append(local.xreplace(read_back) * moved if read_back else local * moved)  # x − μ as x̂/σ⁻¹
        total = tidy(sp.Add(*terms)) if terms else sp.Integer(0)
        if total != 0 and expr in graph.labels and stored is None:
            named_tangents[expr] = total
            graph.label(Value(total, value.shape), graph.labels[expr] + "_dot")
        return None if total == 0 else Value(total, value.shape)

    def labelled(part: sp.Expr) -> sp.Expr:
        """The tangent of a named part, named after it (ż for z)."""
        if part not in named_tangents:
            moved = of(Value(part, graph.shape_of(part)))
            named_tangents.setdefault(part, sp.Integer(0) if moved is None else moved.expr)
        return named_tangents[part]

    named_tangents: dict[sp.Expr, sp.Expr] = {}
    for tensor in _between(graph, set(known), values):
        moved = tuple(of(operand, tensor if tensor.op == "map" else None) for operand in tensor.operands)
        if all(t is None for t in moved):
            continue
        graph.path = graph.module_of.get(tensor.name, "")  # its tangent belongs to the module it came from
        made = lookup(tensor.op).jvp(graph, tensor, moved)
        if made is None or made.expr == 0:
            continue
        _, rest = made.expr.as_coeff_Mul()
        if not rest.is_Symbol:  # stored under a name of its own, so that what reads it stays small (c·ṡ: read as is)
            made = graph.named(made, tensor.name + "_dot")
        known[tensor.symbol] = made
    graph.path = ""
    return [of(value) or Value(sp.Integer(0), value.shape) for value in values]


def _named_parts(graph: Graph, expr: sp.Expr, moves) -> list[sp.Expr]:
    """The outermost parts of `expr` that have a name of their own (graph.labels) and that something moves."""
    found, stack = [], list(expr.args)
    while stack:
        node = stack.pop()
        if node in graph.labels and moves(node):
            found.append(node)
        elif node.args:
            stack.extend(node.args)
    return list(dict.fromkeys(found))


def _between(graph: Graph, seeds: set, values: list[Value]) -> list[Tensor]:
    """The tensors, in order, that `values` are computed from and that read a seed, directly or not."""
    needed: set[sp.Symbol] = set()
    stack = [s for v in values for s in graph.tensor_symbols(v.expr)]
    while stack:
        symbol = stack.pop()
        if symbol in needed or symbol in seeds:
            continue
        needed.add(symbol)
        stack.extend(s for operand in graph.tensor(symbol).operands for s in graph.tensor_symbols(operand.expr))
    moved, order = set(seeds), []
    for tensor in list(graph.tensors.values()):
        if tensor.symbol in needed and any(s in moved for o in tensor.operands for s in graph.tensor_symbols(o.expr)):
            moved.add(tensor.symbol)
            order.append(tensor)
    return order
