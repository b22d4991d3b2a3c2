"""take_rows: each row's entry at its own index, x[torch.arange(n), ids] (makemore's -probs[torch.arange(n), ys].log()):
Σ_k x_k·onehot(ids)_k, the contraction with the one-hot rows of the ids, so its derivative is the one-hot row where
the entry was taken and 0 elsewhere, as torch's index. torch.arange(n) of the batch size n is the rows' own index."""

from __future__ import annotations

import sympy as sp

from ..declare.tensor import SymbolicTensor, as_value, shape_text
from ..declare.trace import ClassIndices, fail, running
from ..graph import Value
from ..shapes import N
from .onehot import onehot
from .registry import TorchNames, defop
from .sum import reduce_sum


class Rows:
    """torch.arange(n) of the batch size n: each row's own index, which only indexing reads."""

    shape = (N,)


def arange(start, end=None, step=1, **_):
    """torch.arange where it counts the rows of the batch (its end the batch size); other ranges are torch's own."""
    end, start = (start, 0) if end is None else (end, start)
    if start == 0 and step == 1 and isinstance(end, sp.Expr) and end == N:
        return Rows()
    raise fail(f"torch.arange({start}, {end}, {step}) over a size other than the batch's is not supported")


def index(x, indices):
    """x[rows, ids]: from each row of x (batch, classes), the entry at its id; table[ids] (makemore's bigram, a
    table of logits indexed by the ids): the table's rows, as an embedding reads them."""
    indices = list(indices)
    if len(indices) == 1 and isinstance(indices[0], SymbolicTensor) and not isinstance(x, Rows) and \
            N not in getattr(x, "shape", (N,)):
        from .embedding import functional as embedding

        return embedding(indices[0], x)
    if len(indices) != 2 or not isinstance(indices[0], Rows) or not isinstance(indices[1], SymbolicTensor):
        raise fail("indexing with tensors is supported as x[torch.arange(n), ids] (each row's entry at its id)")
    value, ids = as_value(x, "index"), indices[1].value
    graph = running().graph
    source = graph.tensors.get(ids.expr)
    if source is not None and source.op == "target" and getattr(running(), "target_open", False) and \
            ids.shape != (N,):
        raise ClassIndices  # the targets hold class indices: the trace starts again with them as integers
    if len(value.shape) != 2 or ids.shape != (N,):
        raise fail(f"x[torch.arange(n), ids] takes x of (batch, classes) and ids of (batch,), got "
                   f"{shape_text(value.shape)} and {shape_text(ids.shape)}")
    if source is None or source.op not in ("input", "target"):
        raise fail("x[torch.arange(n), ids] reads ids that are an input or the target, as given")
    if source.op == "input":
        source.index_range = min(source.index_range or value.shape[1], value.shape[1])
    else:  # the target's ids: the generated code checks that each is a class (a one-hot of 7 of 3 would be 0)
        graph.class_range = (value.shape[1], None)
    classes = onehot(graph, ids, value.shape[1])
    picked = reduce_sum(graph, Value(value.expr * classes.expr, value.shape), (N, 1), stem=running().stem("taken"))
    return SymbolicTensor(picked).reshape(-1)


defop("take_rows", functional=index, front={"aten.index.Tensor": index, "aten.arange.default": arange,
                                       "aten.arange.start": arange, "aten.arange.start_step": arange},
      torch=TorchNames((), (), "", ("aten.index.Tensor", "aten.arange.default", "aten.arange.start",
                                    "aten.arange.start_step")))
