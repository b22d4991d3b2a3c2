"""argmax: the index of the first largest entry along the last axis, which is dropped (torch.argmax's; NaN counts as
the largest, as torch's does). Integer-valued: no derivative. Max pooling's gradient goes to this entry, one-hot."""

from __future__ import annotations

from .primitive import primitive
from .registry import Helper

SHORT = 16  # a last axis this short (a pooling window): a pass per entry beats np.argmax over it
NUMPY_SHORT = Helper("argmax_last", '''
def argmax_last(values):
    """np.argmax over a short last axis (a pooling window), the first of ties: one pass per entry, where np.argmax
    over that axis runs several times slower."""
    best, index = values[..., 0].copy(), np.zeros(values.shape[:-1], dtype=np.intp)
    for k in range(1, values.shape[-1]):
        larger = values[..., k] > best
        np.copyto(best, values[..., k], where=larger)
        index[larger] = k
    return index
''')


def _numpy(printer, statement, texts):
    size = statement.tensor.operands[0].shape[-1]
    if isinstance(size, int) and size <= SHORT:
        return f"{printer.use(NUMPY_SHORT)}({texts[0]})"
    return f"{printer._module_format('numpy.argmax')}({texts[0]}, axis=-1)"


def first_max(graph, value, stem: str = "arg"):
    """The index of the first largest entry along the last axis of `value`."""
    return graph.apply("argmax", (value,), stem=stem, shape=value.shape[:-1], axes=(len(value.shape) - 1,))


primitive(
    "argmax", vjp=lambda *_: iter(()), stem="arg", parenthesized=False, owns_array=True, helpers=(NUMPY_SHORT,),
    spell={"numpy": _numpy,
           "torch": lambda p, s, texts: p._call("torch.argmax", texts[0], "dim=-1"),
           "text": lambda p, s, texts: f"argmax({texts[0]}, axis=-1)",
           "latex": lambda p, s, texts: rf"\operatorname{{argmax}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("argmax", texts[0])})
