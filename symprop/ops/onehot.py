"""onehot: integer class indices as rows of 0s and a 1 (a target's classes); it sums to 1 along its new axis, which is
how the derivation finds Σ_k t_k = 1. It has no derivative: its operand is integer targets."""

from __future__ import annotations

from .primitive import primitive
from .registry import Helper

TORCH = Helper("one_hot", '''
def one_hot(index, classes, dtype):
    """1 at each index along a new last axis, 0 elsewhere, made in dtype (F.one_hot makes int64 first)."""
    out = torch.zeros((*index.shape, classes), dtype=dtype, device=index.device)
    return out.scatter_(-1, index.unsqueeze(-1), 1.0)
''')


def onehot(graph, target, classes: int):
    """The one-hot rows of integer targets, over `classes` classes."""
    return graph.apply("onehot", (target,), key=str(classes), simplex_axis=len(target.shape))


def _no_vjp(graph, tensor, cotangent, needed):
    return iter(())  # integer targets: nothing to differentiate


def _numpy(printer, statement, texts):
    arange = printer._module_format("numpy.arange")
    return printer.in_dtype(f"({texts[0]}[..., None] == {arange}({statement.tensor.key}))")


primitive(
    "onehot", shape=lambda operands, key, simplex_axis: operands[0].shape + (int(key),), vjp=_no_vjp, stem="onehot",
    parenthesized=False, owns_array=True, latex_stem="T", helpers=(TORCH,),
    spell={"numpy": _numpy,
           "torch": lambda p, s, texts: f"{p.use(TORCH)}({texts[0]}, {s.tensor.key}, {p.dtype_text})",
           "text": lambda p, s, texts: f"onehot({texts[0]}, {s.tensor.key})",
           "latex": lambda p, s, texts: rf"\operatorname{{onehot}}_{{{s.tensor.key}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("onehot", texts[0])})
