"""Stage 3, derive: reverse mode over the tensor graph, one cotangent per tensor.

Between tensors, the chain rule is `sympy.diff` of the fused elementwise
expression. Across tensors it follows from each primitive's definition: its `vjp`,
in its own module of symprop/ops/, found in the registry by the tensor's op. Broadcasting
in an expression is undone by summing over the broadcast axes; an op may give the sum of
cotangent terms of its making a form of its own (registry.COTANGENT_RULES).
Each tensor's contributions are summed once, after all its consumers, so the work
grows linearly with depth.
"""

from __future__ import annotations

from collections import defaultdict

import sympy as sp

from .graph import Graph, Tensor, Value
from .notes import define
from .ops.registry import COTANGENT_RULES, lookup
from .ops.sum import reduce_sum
from .simplify import derivative, replace_structurally, tidy

CANCELS = define(
    "cancels", "dL/d{0} = 0: the terms of the chain rule through {0} cancel",
    r"$\partial L / \partial {0} = 0$: the terms of the chain rule through ${0}$ cancel, so nothing flows back "
    r"through it (shifting the logits by their row maximum does not change the probabilities).")


def backward(graph: Graph, loss: Value, wrt: list[Tensor]) -> dict[Tensor, Value]:
    """dL/d(tensor) for every tensor in `wrt`, as Values over graph tensors."""
    forward = list(graph.tensors.values())
    live = depends_on(forward, set(wrt))
    # tensor -> {shape the contribution has before broadcasting is undone: [terms]}
    contributions: dict[Tensor, dict[tuple, list[sp.Expr]]] = defaultdict(lambda: defaultdict(list))
    read_back = {t.symbol: t.read_back_as for t in forward if t.read_back_as is not None}

    def push(operand: Value, cotangent: Value, stored: Tensor | None = None) -> None:
        """The chain rule through one fused expression, into each tensor it reads. When the expression
        is stored (a map tensor), its derivative reads the stored value: (v^(-1/2))' = -r^3/2 for r = v^(-1/2)."""
        for symbol in graph.tensor_symbols(operand.expr):
            tensor = graph.tensor(symbol)
            local = derivative(operand.expr, symbol)
            if stored is not None:
                local = replace_structurally(local, operand.expr, stored.symbol)
            local = local.xreplace(read_back) if read_back else local
            if tensor in live and local != 0 and cotangent.expr != 0:
                contributions[tensor][operand.shape].append(cotangent.expr * local)
                graph.chain.setdefault(symbol, []).append((operand.expr, cotangent.expr, local))

    def total(tensor: Tensor) -> Value:
        """One cotangent: terms of one shape summed, then broadcasting undone once per shape."""
        if len(contributions[tensor]) == 1:
            ((shape, terms),) = contributions[tensor].items()
            for rule in COTANGENT_RULES:  # before broadcasting is undone: a bias reads the tiles that its layer's
                made = rule(graph, terms, shape, f"d{tensor.name}")  # output has as their concat, summed
                if made is not None:
                    contributions.pop(tensor)
                    if shape == tensor.shape:
                        return made
                    return Value(reduce_sum(graph, made, tensor.shape, stem=f"d{tensor.name}").expr, tensor.shape)
        parts = [reduce_sum(graph, Value(tidy(sp.Add(*terms)), shape), tensor.shape, stem=f"d{tensor.name}",
                            whole=True)
                 for shape, terms in contributions.pop(tensor).items()]
        if len(parts) == 1:
            return Value(parts[0].expr, tensor.shape)
        return Value(tidy(sp.Add(*(p.expr for p in parts))), tensor.shape)

    push(loss, Value(sp.Integer(1), ()))
    cotangents: dict[Tensor, Value] = {}
    for tensor in reversed(forward):
        if tensor not in contributions:
            continue
        graph.path = graph.module_of.get(tensor.name, "")  # its cotangent's values belong to the module it came from
        consumers = sum(len(terms) for terms in contributions[tensor].values())
        cotangents[tensor] = cotangent = total(tensor)
        if cotangent.expr == 0:
            graph.note(CANCELS, tensor.name)
            continue
        kept = tensor.keeps_cotangent and graph.shape_of(cotangent.expr) == tensor.shape  # not one to broadcast
        if tensor.op == "map" and (consumers > 1 and tensor.zero_sum_axis is None or kept) and \
                not cotangent.expr.is_Atom:
            # A stored value read in several places gets its summed cotangent stored too: what flows on
            # reads its name, so expressions grow linearly with depth. Otherwise the cotangent stays fused
            # with the next step: a centred x − μ's, so that Σ_e (x − μ) = 0 acts on the sum of it.
            cotangents[tensor] = cotangent = graph.named(cotangent, graph.cotangent_names[tensor.symbol])
        elif tensor.symbol in graph.cotangent_names:
            graph.label(cotangent, graph.cotangent_names[tensor.symbol])
        needed = [any(graph.tensor(s) in live for s in graph.tensor_symbols(op.expr)) for op in tensor.operands]
        if not any(needed):
            continue
        for operand, operand_cotangent in lookup(tensor.op).vjp(graph, tensor, cotangent, needed):
            push(operand, operand_cotangent, tensor if tensor.op == "map" else None)
    graph.path = ""
    return {tensor: cotangents.get(tensor, Value(sp.Integer(0), tensor.shape)) for tensor in wrt}


def depends_on(forward: list[Tensor], roots: set[Tensor]) -> set[Tensor]:
    """Tensors whose value depends on any root: the only ones that need a cotangent."""
    live, symbols = set(roots), {t.symbol for t in roots}
    for tensor in forward:
        if any(symbols & op.expr.free_symbols for op in tensor.operands):
            live.add(tensor)
            symbols.add(tensor.symbol)
    return live
