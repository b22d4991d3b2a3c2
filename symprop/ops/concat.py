"""concat: tensors of equal shape but along one axis, joined along it (torch.cat). Its adjoint gives each operand its
own slice of the cotangent; and cotangents that are pads tiling a tensor sum to one concat (attention's three
projections, sliced from one product, give back one)."""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import Parameter, SymbolicTensor, as_value, axis_of, kind_of, shape_text, traced_graph
from ..declare.trace import fail, running
from ..graph import Value
from ..graph.ir import Tensor
from ..plan.uses import Uses, unused
from ..program import Statement
from ..shapes import N
from .primitive import primitive
from .registry import TorchNames, cotangent_rule, layout_rule
from .slice import along_axis


def _shape(operands, axes):
    (axis,) = axes
    return tuple(sum(v.shape[axis] for v in operands) if a == axis else d for a, d in enumerate(operands[0].shape))


def _vjp(graph, tensor, cotangent, needed):
    (axis,), start = tensor.axes, 0  # each operand's own slice
    for j, operand in enumerate(tensor.operands):
        stop = start + operand.shape[axis]
        if needed[j]:
            yield operand, graph.apply("slice", (cotangent,), axes=(axis,), bounds=(start, stop),
                                       stem="d" + graph.name_of(operand.expr, f"{tensor.name}_{j}"))
        start = stop


def _jvp(graph, tensor, tangents):
    """The operands' tangents joined, 0 for an operand that does not move."""
    moved = tuple(Value(sp.Integer(0), o.shape) if t is None else t for o, t in zip(tensor.operands, tangents,
                                                                                     strict=True))
    return graph.again(tensor, moved)


@cotangent_rule
def tiles(graph, terms: list[sp.Expr], shape: tuple, stem: str):
    """The sum of pads that tile a tensor of `shape` along one axis, as one concat of what they pad; None if the terms
    are not that. (Three slices of an attention's in-projection give three padded cotangents: no zeros are made or
    added.)"""
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
    if start != shape[axis]:
        return None
    return graph.apply("concat", tuple(p.operands[0] for p in pads), stem=stem, axes=(axis,))


def cat(tensors, dim: int = 0) -> SymbolicTensor:
    """torch.cat: tensors of equal shape but along `dim`, joined along it."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise fail(f"cat expects a list of tensors, got {kind_of(tensors)}")
    tensors = [t.resolve() if isinstance(t, Parameter) else t for t in tensors]
    if not any(isinstance(t, SymbolicTensor) for t in tensors):
        import torch  # torch tensors, in a torch run of the model

        return torch.cat(tensors, dim=dim)
    values = [as_value(t, "cat") for t in tensors]
    ndim = len(values[0].shape)
    axis = axis_of(dim, max(ndim, 1), "cat")
    for v in values:
        if len(v.shape) != ndim or any(a != axis and d != values[0].shape[a] for a, d in enumerate(v.shape)):
            raise fail(f"cat along dim {dim}: shapes {', '.join(shape_text(v.shape) for v in values)} differ "
                       "elsewhere")
    if values[0].shape[axis] == N:
        raise fail("cat along the batch axis is not supported")
    if len(values) == 1:
        return SymbolicTensor(values[0])
    return SymbolicTensor(traced_graph().apply("concat", values, stem=running().stem("cat"), axes=(axis,)))


def stack(tensors, dim: int = 0) -> SymbolicTensor:
    """torch.stack: tensors of one shape, joined along a new axis `dim`."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise fail(f"stack expects a list of tensors, got {kind_of(tensors)}")
    ndim = len(as_value(tensors[0], "stack").shape)
    axis = axis_of(dim, ndim + 1, "stack")
    return cat([t.unsqueeze(axis) if isinstance(t, SymbolicTensor) else t.resolve().unsqueeze(axis)
                if isinstance(t, Parameter) else t.unsqueeze(axis) for t in tensors], axis)


def index_select(x, dim: int, index) -> SymbolicTensor:
    """x.index_select(dim, index) for an index that the model fixes (torch.roll, as torch.export lowers it): each run
    of consecutive entries a slice, the slices joined along dim, so that the derivative is theirs."""
    x = resolved(x)
    if in_torch(x, index):
        return torch_function("torch.index_select")(x, dim, index)
    if isinstance(index, SymbolicTensor):
        raise fail("index_select: an index computed from the inputs is not supported (an index fixed by the model's "
                   "sizes is: torch.roll); use an embedding for rows picked by ids")
    value = as_value(x, "index_select")
    axis = axis_of(dim, len(value.shape), "index_select")
    length = value.shape[axis]
    entries = [int(i) for i in (index.tolist() if hasattr(index, "tolist") else index)]
    if length == N or not entries or any(not -length <= i < length for i in entries):
        raise fail(f"index_select along dim {dim}: give indices within an axis other than the batch axis")
    runs = []  # [start, stop) of consecutive entries
    for i in (i % length for i in entries):
        if runs and runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, i + 1])
    return cat([along_axis(x, axis, slice(start, stop)) for start, stop in runs], axis)


def roll(x, shifts, dims=None) -> SymbolicTensor:
    """torch.roll(x, shifts, dims): entries moved along each dim by its shift, those that fall off the end coming back
    at the start; each dim a join of two slices."""
    x = resolved(x)
    if in_torch(x):
        return torch_function("torch.roll")(x, shifts, dims)
    if dims is None:
        raise fail("roll: give dims (rolling the flattened tensor would move entries between samples)")
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise fail(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    for shift, dim in zip(shifts, dims, strict=True):
        shape = as_value(x, "roll").shape
        length = shape[axis_of(dim, len(shape), "roll")]
        if length == N:
            raise fail("roll: the batch axis is not rolled")
        x = index_select(x, dim, [(i - shift) % length for i in range(length)])
    return x


def _latex(printer, statement, texts):
    if statement.tensor.axes == (0,):
        return r"\begin{bmatrix} " + r" \\ ".join(texts) + r" \end{bmatrix}"
    return rf"\operatorname{{concat}}_{{{statement.tensor.axes[0]}}}\left({', '.join(texts)}\right)"


primitive(
    "concat", shape=_shape, vjp=_vjp, jvp=_jvp, stem="cat",
    spell={"numpy": lambda p, s, texts: f"{p._module_format('numpy.concatenate')}([{', '.join(texts)}], "
                                        f"axis={s.tensor.axes[0]})",
           "torch": lambda p, s, texts: p._call("torch.cat", f"[{', '.join(texts)}]", f"dim={s.tensor.axes[0]}"),
           "text": lambda p, s, texts: f"concat([{', '.join(texts)}], axis={s.tensor.axes[0]})",
           "latex": _latex, "mathml": lambda p, s, texts: p.named_call("concat", *texts)},
    torch=TorchNames(functions=("torch.cat", "torch.concat", "torch.stack", "torch.roll", "torch.index_select"),
                     methods=("roll", "index_select"),
                     aten=("aten.cat.default", "aten.stack.default", "aten.roll.default", "aten.index_select.default")),
    front={"torch.cat": cat, "torch.concat": cat, "aten.cat.default": cat, "torch.stack": stack,
           "aten.stack.default": stack, "torch.roll": roll, "roll": roll, "aten.roll.default": roll,
           "torch.index_select": index_select, "index_select": index_select,
           "aten.index_select.default": index_select}, finite=True)


# -- code: flattened operands joined before they are flattened -------------------------------------------------------
@layout_rule
def join_before_flattening(uses: Uses, shapes: dict, backend: str) -> Uses:
    """A join along the last axis of operands that each flatten their last axes, (n, t, h, d) -> (n, t, h·d), as a join
    of the operands along a new axis before them, (n, t, 3, h, d), then flattened: the same numbers in the same order.
    An operand whose axes were permuted (attention's q, k and v gradients, computed by head) is copied by its
    flattening and again by the join; this way only the join copies it, and the flattening of the join is a view."""
    if backend not in ("numpy", "torch"):
        return uses
    made = {s.symbol: s for s in uses.statements}
    taken = {s.name for s in uses.statements}
    for join in [s for s in uses.statements if s.kind == "concat"]:
        flattenings = [made.get(operand) for operand in join.operands]
        axis, shape = join.tensor.axes[0], tuple(join.shape)
        if axis != len(shape) - 1 or any(join.broadcast_operands) or \
                not all(_flattens_last_axes(f, shape, uses, join) for f in flattenings) or \
                len({tuple(f.tensor.operands[0].shape) for f in flattenings}) != 1:
            continue
        unflat = tuple(flattenings[0].tensor.operands[0].shape)
        new_axis = len(shape) - 1
        one_more = (*unflat[:new_axis], 1, *unflat[new_axis:])
        for f in flattenings:  # each operand as it was, with an axis of 1 before its last ones: a view
            f.tensor = replace(f.tensor, shape=one_more, split=one_more, perm=tuple(range(len(one_more))))
            f.shape = shapes[f.symbol] = one_more
            uses.rewrite(f, {})
        joined = sp.Symbol(unused(f"{join.name}_parts", taken), real=True)
        parts = (*unflat[:new_axis], len(flattenings), *unflat[new_axis:])
        position = uses.statements.index(join)
        uses.statements[position] = Statement(
            joined.name, "concat", operands=join.operands, shape=parts, broadcast_operands=join.broadcast_operands,
            tensor=replace(join.tensor, symbol=joined, shape=parts, axes=(new_axis,),
                           operands=tuple(Value(f.symbol, one_more) for f in flattenings)))
        shapes[joined] = parts
        flat = Tensor(join.symbol, shape, "rearrange", operands=(Value(joined, parts),), split=shape,
                      perm=tuple(range(len(shape))))
        uses.insert(position + 1, Statement(join.name, "rearrange", tensor=flat, operands=(joined,), shape=shape,
                                            broadcast_operands=(False,), label=join.label))
        uses.rewrite(uses.statements[position], {})
    return uses


def _flattens_last_axes(statement, shape: tuple, uses: Uses, join) -> bool:
    """Whether `statement` only reshapes its operand (n, ..., a, b) into (n, ..., a·b) for the join `join` alone."""
    if statement is None or statement.kind != "rearrange" or \
            statement.tensor.perm != tuple(range(len(statement.tensor.perm))):
        return False
    unflat = tuple(statement.tensor.operands[0].shape)
    lead = len(shape) - 1
    return len(unflat) > len(shape) and unflat[:lead] == shape[:lead] and \
        tuple(statement.shape)[:lead] == shape[:lead] and uses.readers(statement.symbol) == [join]
