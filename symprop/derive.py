"""Stage 3, derive: reverse mode over the tensor graph, one cotangent per tensor.

Between tensors, the chain rule is `sympy.diff` of the fused elementwise
expression. Across tensors it follows from each primitive's definition:
- einsum: the cotangent of an operand is the einsum of the output's cotangent with
  the other operands, its index spec read off the forward spec;
- sum: the cotangent is broadcast back over the summed axes;
- max: the cotangent goes to the elements equal to the max, since
  max_k z_k = Σ_k z_k·[z_k = max z];
- slice, pad, concat and rearrange only move entries: each one's cotangent is its
  adjoint, the move undone (a slice's is zeros around the slice; a rearrange's the
  inverse rearrange), and pads that tile a tensor are one concatenation;
- broadcasting in an expression is undone by summing over the broadcast axes.
Each tensor's contributions are summed once, after all its consumers, so the work
grows linearly with depth.
"""

from __future__ import annotations

from collections import defaultdict

import sympy as sp

from .graph import Graph, Tensor, Value
from .simplify import reduce_sum, replace_structurally, tidy


def backward(graph: Graph, loss: Value, wrt: list[Tensor]) -> dict[Tensor, Value]:
    """dL/d(tensor) for every tensor in `wrt`, as Values over graph tensors."""
    forward = list(graph.tensors.values())
    live = _depends_on(forward, set(wrt))
    # tensor -> {shape the contribution has before broadcasting is undone: [terms]}
    contributions: dict[Tensor, dict[tuple, list[sp.Expr]]] = defaultdict(lambda: defaultdict(list))

    def push(operand: Value, cotangent: Value, stored: Tensor | None = None) -> None:
        """The chain rule through one fused expression, into each tensor it reads. When the expression
        is stored (a map tensor), its derivative reads the stored value: (v^(-1/2))' = -r^3/2 for r = v^(-1/2)."""
        for symbol in graph.tensor_symbols(operand.expr):
            tensor = graph.tensor(symbol)
            local = sp.diff(operand.expr, symbol)
            if stored is not None:
                local = replace_structurally(local, operand.expr, stored.symbol)
            if tensor in live and local != 0 and cotangent.expr != 0:
                contributions[tensor][operand.shape].append(cotangent.expr * local)
                graph.chain.setdefault(symbol, []).append((operand.expr, cotangent.expr, local))

    def total(tensor: Tensor) -> Value:
        """One cotangent: terms of one shape summed, then broadcasting undone once per shape."""
        tiles = _tiles(graph, contributions[tensor].get(tensor.shape, []), tensor)
        if tiles is not None and len(contributions[tensor]) == 1:
            contributions.pop(tensor)
            axis, parts = tiles
            return graph.concat(parts, axis, stem=f"d{tensor.name}")
        parts = [reduce_sum(graph, Value(tidy(sp.Add(*terms)), shape), tensor.shape, stem=f"d{tensor.name}")
                 for shape, terms in contributions.pop(tensor).items()]
        if len(parts) == 1:
            return Value(parts[0].expr, tensor.shape)
        return Value(tidy(sp.Add(*(p.expr for p in parts))), tensor.shape)

    push(loss, Value(sp.Integer(1), ()))
    cotangents: dict[Tensor, Value] = {}
    for tensor in reversed(forward):
        if tensor not in contributions:
            continue
        consumers = sum(len(terms) for terms in contributions[tensor].values())
        cotangents[tensor] = cotangent = total(tensor)
        if cotangent.expr == 0:
            graph.note("cancels", tensor.name)
            continue
        if tensor.op == "map" and consumers > 1 and tensor.zero_sum_axis is None and not cotangent.expr.is_Atom:
            # A stored value read in several places gets its summed cotangent stored too: what flows on
            # reads its name, so expressions grow linearly with depth. Otherwise the cotangent stays fused
            # with the next step: a centred x − μ's, so that Σ_e (x − μ) = 0 acts on the sum of it.
            cotangents[tensor] = cotangent = graph.named(cotangent, graph.cotangent_names[tensor.symbol])
        elif tensor.symbol in graph.cotangent_names:
            graph.label(cotangent, graph.cotangent_names[tensor.symbol])
        needed = [any(graph.tensor(s) in live for s in graph.tensor_symbols(op.expr)) for op in tensor.operands]
        for operand, operand_cotangent in _vjp(graph, tensor, cotangent, needed):
            push(operand, operand_cotangent, tensor if tensor.op == "map" else None)
    return {tensor: cotangents.get(tensor, Value(sp.Integer(0), tensor.shape)) for tensor in wrt}


def _vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed: list[bool]):
    """(operand, its cotangent) for each operand of `tensor` that is `needed`."""
    if tensor.op == "einsum":
        inputs, output = tensor.spec.split("->")
        letters = inputs.split(",")
        for j, operand in enumerate(tensor.operands):
            if not needed[j]:
                continue
            others = [k for k in range(len(letters)) if k != j]
            spec = ",".join([output] + [letters[k] for k in others]) + "->" + letters[j]
            missing = set(letters[j]) - set(output) - {c for k in others for c in letters[k]}
            if missing:
                raise NotImplementedError(f"einsum {tensor.spec}: index {missing} sums inside one operand")
            stem = "d" + _name_of(graph, operand.expr, f"{tensor.name}_{j}")
            if operand.expr in graph.tensors and graph.tensors[operand.expr].op == "map":
                stem += f"_{tensor.name}"  # one part of a stored value's cotangent: d<name> is the sum's
            yield operand, graph.einsum(spec, cotangent, *(tensor.operands[k] for k in others), stem=stem)
    elif tensor.op == "sum" and needed[0]:
        (operand,) = tensor.operands
        yield operand, Value(cotangent.expr, operand.shape)  # sums drop leading axes only, so this broadcasts
    elif tensor.op == "map" and needed[0]:  # a stored elementwise value: the chain rule goes on through it
        yield tensor.operands[0], cotangent
    elif tensor.op == "slice" and needed[0]:
        (operand,), (axis,), (start, stop) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.pad(cotangent, axis, start, operand.shape[axis] - stop, stem=f"d{tensor.name}_padded")
    elif tensor.op == "pad" and needed[0]:
        (operand,), (axis,), (before, _) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.slice(cotangent, axis, before, before + operand.shape[axis],
                                   stem="d" + _name_of(graph, operand.expr, tensor.name))
    elif tensor.op == "concat":
        (axis,), start = tensor.axes, 0
        for j, operand in enumerate(tensor.operands):
            stop = start + operand.shape[axis]
            if needed[j]:
                yield operand, graph.slice(cotangent, axis, start, stop, stem="d" + _name_of(graph, operand.expr,
                                                                                         f"{tensor.name}_{j}"))
            start = stop
    elif tensor.op == "rearrange" and needed[0]:
        (operand,) = tensor.operands
        inverse = tuple(sorted(range(len(tensor.perm)), key=tensor.perm.__getitem__))
        moved = tuple(tensor.split[a] for a in tensor.perm)
        yield operand, graph.rearrange(cotangent, moved, inverse, operand.shape,
                                       stem="d" + _name_of(graph, operand.expr, tensor.name))
    elif tensor.op == "max" and needed[0]:
        (operand,) = tensor.operands
        at_max = sp.Piecewise((1, sp.Eq(operand.expr, tensor.symbol)), (0, True))
        yield operand, Value(cotangent.expr * at_max, operand.shape)


def _tiles(graph: Graph, terms: list[sp.Expr], tensor: Tensor):
    """(axis, the operands of pads that tile `tensor` along it, in order); None if the terms are not that.

    Three slices of an attention's in-projection give three padded cotangents; their sum is
    their concatenation, with no zeros made or added."""
    pads = [graph.tensors.get(term) for term in terms]
    if len(pads) < 2 or any(p is None or p.op != "pad" for p in pads) or len({p.axes for p in pads}) != 1:
        return None
    (axis,) = pads[0].axes
    pads.sort(key=lambda p: p.bounds[0])
    start = 0
    for p in pads:
        if p.bounds[0] != start:
            return None
        start += p.operands[0].shape[axis]
    return (axis, tuple(p.operands[0] for p in pads)) if start == tensor.shape[axis] else None


def _name_of(graph: Graph, expr: sp.Expr, fallback: str) -> str:
    if expr in graph.labels:
        return graph.labels[expr]
    return expr.name if expr.is_Symbol else fallback


def _depends_on(forward: list[Tensor], roots: set[Tensor]) -> set[Tensor]:
    """Tensors whose value depends on any root: the only ones that need a cotangent."""
    live, symbols = set(roots), {t.symbol for t in roots}
    for tensor in forward:
        if any(symbols & op.expr.free_symbols for op in tensor.operands):
            live.add(tensor)
            symbols.add(tensor.symbol)
    return live
