"""onehot: integer class indices as rows of 0s and a 1 (a target's classes); it sums to 1 along its new axis, which is
how the derivation finds Σ_k t_k = 1. It has no derivative: its operand is integer targets."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor
from ..declare.trace import ClassIndices, fail, running
from ..graph import Value
from .primitive import no_jvp, primitive
from .registry import Helper, TorchNames, fact

TORCH = Helper("one_hot", '''
def one_hot(index, classes, dtype):
    """1 at each index along a new last axis, 0 elsewhere, made in dtype (F.one_hot makes int64 first). An input
    that forward also reads as numbers comes in the parameters' dtype: its classes are made integers again."""
    out = torch.zeros((*index.shape, classes), dtype=dtype, device=index.device)
    return out.scatter_(-1, index.long().unsqueeze(-1), 1.0)
''')


def id_source(graph, ids):
    """(the input or target whose entries `ids` are, sliced or reshaped, or None; the move made first from it)."""
    tensor, first = graph.tensors.get(ids.expr), None
    while tensor is not None and fact(tensor.op, "moves"):  # xs[:, k], xs.view(-1): the input's ids, moved
        first = tensor
        tensor = graph.tensors.get(tensor.operands[0].expr)
    return tensor, first


def bound_ids(source, first, bound: int) -> None:
    """An input's ids index a table of `bound` rows: all of them, or, where `first` takes columns of its last axis
    (x[:, 0] and x[:, 1], a recommender's user and item ids), those columns."""
    last = len(source.shape) - 1
    if first is not None and first.op == "slice" and first.axes == (last,) and last > 0:
        columns = list(source.column_ranges or (0,) * source.shape[last])
        for column in range(*first.bounds):
            columns[column] = min(columns[column] or bound, bound)
        source.column_ranges = tuple(columns)
    else:
        source.index_range = min(source.index_range or bound, bound)


def onehot(graph, target, classes: int):
    """The one-hot rows of integer targets, over `classes` classes; of one class for every row (MoCo's labels,
    torch.zeros(N, dtype=torch.long)), that constant row."""
    if target.expr.is_Integer:
        if not 0 <= int(target.expr) < classes:
            raise fail(f"class {int(target.expr)} is not one of the {classes} classes")
        row = graph.apply("constant", (), shape=(classes,), data=tuple(float(k == target.expr) for k in range(classes)))
        return Value(row.expr, (*target.shape, classes))
    return graph.apply("onehot", (target,), key=str(classes), simplex_axis=len(target.shape))


def one_hot(tensor, num_classes: int = -1):
    """torch's F.one_hot of a model's input of integer ids (makemore's bigram: one_hot(xs, 27).float() @ W), over
    num_classes, which symprop needs given: torch's default reads the ids' largest value."""
    tensor = resolved(tensor)
    if in_torch(tensor):
        return torch_function(TORCH_NAMES.functions[0])(tensor, num_classes)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise fail("F.one_hot: give num_classes, the number of classes (symprop does not read it off the ids)")
    graph = running().graph
    source, first = id_source(graph, tensor.value) if isinstance(tensor, SymbolicTensor) else (None, None)
    if source is None or source.op not in ("input", "target"):
        raise fail("F.one_hot reads integer ids: an input of the model or the target as given, not a computed value")
    if source.op == "target":  # a Dice loss's one-hot target: the generated code checks that each is a class
        if getattr(running(), "target_open", False) and len(source.shape) > 1:
            raise ClassIndices  # the target holds class indices: the trace starts again with them as integers
        graph.class_range = (num_classes, None)
    else:
        bound_ids(source, first, num_classes)
    return SymbolicTensor(graph.apply("onehot", (tensor.value,), key=str(num_classes),
                                      simplex_axis=len(tensor.value.shape)))


def _no_vjp(graph, tensor, cotangent, needed):
    return iter(())  # integer targets: nothing to differentiate


def _numpy(printer, statement, texts):
    arange = printer._module_format("numpy.arange")
    return printer.in_dtype(f"({texts[0]}[..., None] == {arange}({statement.tensor.key}))")


TORCH_NAMES = TorchNames(("torch.nn.functional.one_hot",), (), "", ("aten.one_hot.default",))
primitive(
    "onehot", torch=TORCH_NAMES, functional=one_hot,
    shape=lambda operands, key, simplex_axis: operands[0].shape + (int(key),), vjp=_no_vjp, jvp=no_jvp,
    stem="onehot",
    parenthesized=False, owns_array=True, latex_stem="T", helpers=(TORCH,),
    spell={"numpy": _numpy,
           "torch": lambda p, s, texts: f"{p.use(TORCH)}({texts[0]}, {s.tensor.key}, {p.dtype_text})",
           "text": lambda p, s, texts: f"onehot({texts[0]}, {s.tensor.key})",
           "latex": lambda p, s, texts: rf"\operatorname{{onehot}}_{{{s.tensor.key}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("onehot", texts[0])}, finite=True)
