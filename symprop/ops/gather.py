"""gather: the rows of a table picked by integer indices, table[index] (an embedding's lookup). It is a contraction
over the table's rows, Σ_v [i = v]·W_vd, linear in W: the einsum rule gives its adjoint, onehot(i)ᵀ @ δ, that is each
row of the cotangent added into the row it was read from: a scatter-add (no one-hot is made). A `skip` index's row
is read as a constant, as torch reads an embedding's padding_idx: the scatter-add leaves its cotangent out."""

from __future__ import annotations

import sympy as sp

from ..graph import Value
from .primitive import primitive


def _vjp(graph, tensor, cotangent, needed):
    """A row read at the `skip` index (an embedding's padding_idx) is read as a constant: its cotangent is not added."""
    table, index = tensor.operands
    if needed[0]:
        yield table, graph.apply("scatter_add", (cotangent, index), stem="d" + graph.name_of(table.expr, "table"),
                                 shape=(table.shape[0],) + tuple(cotangent.shape[len(index.shape):]), skip=tensor.skip)


def _jvp(graph, tensor, tangents):
    """The rows of the table's tangent; 0 at the `skip` index, whose row is read as a constant."""
    table, index = tensor.operands
    if tangents[0] is None:
        return None
    rows = graph.again(tensor, (tangents[0], index))
    if tensor.skip is None:
        return rows
    ids = graph.apply("rearrange", (index,), shape=index.shape + (1,) * (len(table.shape) - 1), split=index.shape,
                      perm=tuple(range(len(index.shape))))
    kept = sp.Piecewise((0, sp.Eq(ids.expr, tensor.skip)), (1, True))
    return Value(rows.expr * kept, rows.shape)


def _code(printer, statement, texts):
    return f"{texts[0]}[{texts[1]}]"


primitive(
    "gather", shape=lambda operands, skip=None: tuple(operands[1].shape) + tuple(operands[0].shape[1:]), vjp=_vjp,
    jvp=_jvp, stem="rows",
    spell={"numpy": _code, "torch": _code, "text": _code,
           "latex": lambda p, s, texts: rf"{{{texts[0]}}}_{{[{texts[1]}]}}",
           "mathml": lambda p, s, texts: f"<msub><mrow>{texts[0]}</mrow><mrow>{texts[1]}</mrow></msub>"}, finite=True)
