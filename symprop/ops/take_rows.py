"""take_rows: each row's entry at its own index, x[torch.arange(n), ids] (makemore's -probs[torch.arange(n), ys].log()):
Σ_k x_k·onehot(ids)_k, the contraction with the one-hot rows of the ids, so its derivative is the one-hot row where
the entry was taken and 0 elsewhere, as torch's index. torch.arange(n) of the batch size n is the rows' own index."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved
from ..declare.tensor import SymbolicTensor, as_value, axis_of, shape_text
from ..declare.trace import ClassIndices, fail, running
from ..graph import Value
from ..shapes import N
from .onehot import bound_ids, id_source, one_hot, onehot
from .registry import TorchNames, defop
from .sum import reduce_sum


class Rows:
    """torch.arange(n) of the batch size n: each row's own index, which only indexing (and cross-entropy's targets)
    reads; any torch function of it is refused."""

    shape = (N,)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = str(getattr(func, "__name__", func)).split(".")[0]
        raise fail(f"torch.arange(n) of the batch size is read as the rows of x[torch.arange(n), ids], or as "
                   f"F.cross_entropy's targets; {name} of it is not supported")


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
    if len(indices) == 2 and all(isinstance(i, Rows) for i in indices):  # x[arange(n), arange(n)] of (n, n)
        from .diagonal import diagonal_of

        return diagonal_of(x)
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
        bound_ids(source, None, value.shape[1])
    else:  # the target's ids: the generated code checks that each is a class (a one-hot of 7 of 3 would be 0)
        graph.class_range = (value.shape[1], None)
    classes = onehot(graph, ids, value.shape[1])
    picked = reduce_sum(graph, Value(value.expr * classes.expr, value.shape), (N, 1), stem=running().stem("taken"))
    return SymbolicTensor(picked).reshape(-1)


def _of_open_target(ids) -> bool:
    """Whether ids are the target, moved, while the trace does not know yet that it holds class indices."""
    source, _ = id_source(running().graph, ids)
    return source is not None and source.op == "target" and getattr(running(), "target_open", False)


def gather(input, dim, index, *, sparse_grad=False):
    """torch.gather (a DQN's q.gather(1, actions.unsqueeze(1)); torch's lowering of nll_loss over (N, C, d)): along
    the last axis, out[..., k] = input[..., index[..., k]], the contraction Σ_c input[..., c]·onehot(index)[..., k, c]
    with the one-hot rows of the ids (an input or the target as given), so that its derivative is derived as
    take_rows's is; along another axis but the batch's, that axis swapped with the last, and back."""
    input, index = resolved(input), resolved(index)
    if in_torch(input):
        import torch

        return torch.gather(input, dim, index, sparse_grad=sparse_grad)
    value = as_value(input, "torch.gather")
    ids = index.value if isinstance(index, SymbolicTensor) else None
    axis = axis_of(dim, len(value.shape), "torch.gather")
    if ids is not None and _of_open_target(ids) and len(ids.shape) != len(value.shape) - 1:
        raise ClassIndices  # target.unsqueeze(1), traced as the output's shape: the targets hold class indices
    if ids is None or len(ids.shape) != len(value.shape) or value.shape[axis] == N or \
            any(a != b for i, (a, b) in enumerate(zip(ids.shape, value.shape, strict=True)) if i != axis):
        raise fail("torch.gather takes ids of the input's shape but for the axis gathered, which is not the batch "
                   f"axis (got dim={dim}, {shape_text(value.shape)} and {shape_text(getattr(ids, 'shape', ()))})")
    last = len(value.shape) - 1
    if axis != last:
        swapped = SymbolicTensor(value).transpose(axis, last)
        return gather(swapped, -1, index.transpose(axis, last)).transpose(axis, last)
    graph, classes = running().graph, value.shape[-1]
    source, _ = id_source(graph, ids)  # actions.unsqueeze(1): the ids as given, moved
    if source is None or source.op not in ("input", "target"):  # F.nll_loss over (N, C, d) as torch lowers it
        raise fail("torch.gather reads ids that are an input or the target as given, not computed ones (F.nll_loss "
                   "over (N, C, d...) in a loss function computes them: pass nn.NLLLoss() as the loss instead)")
    if source.op == "target":  # the generated code checks that each is a class
        graph.class_range = (classes, None)
        rows = SymbolicTensor(onehot(graph, ids, classes))
    else:
        rows = one_hot(index, classes)
    return (SymbolicTensor(value).unsqueeze(-2) * rows).sum(-1)


defop("take_rows", functional=index, front={"aten.index.Tensor": index, "aten.arange.default": arange,
                                       "aten.arange.start": arange, "aten.arange.start_step": arange,
                                       "torch.gather": gather, "gather": gather, "aten.gather.default": gather},
      torch=TorchNames(("torch.gather",), ("gather",), "", ("aten.index.Tensor", "aten.arange.default",
                                                            "aten.arange.start", "aten.arange.start_step",
                                                            "aten.gather.default")))
