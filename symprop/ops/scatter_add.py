"""scatter_add: a table of rows, row r the sum of the rows of values whose index is r: the adjoint of a gather, whose
adjoint is that gather (the transpose of the one-hot contraction is the contraction itself)."""

from __future__ import annotations

from .primitive import primitive
from .registry import Helper

NUMPY = Helper("scatter_add", '''
def scatter_add(values, index, rows):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (np.add.at)."""
    out = np.zeros((rows,) + values.shape[index.ndim:], dtype=values.dtype)
    np.add.at(out, index, values)
    return out
''')
TORCH = Helper("scatter_add", '''
def scatter_add(values, index, rows):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (index_add_)."""
    row = values.shape[index.dim():]
    out = torch.zeros((rows, *row), dtype=values.dtype, device=values.device)
    return out.index_add_(0, index.reshape(-1), values.reshape(-1, *row))
''')


def _vjp(graph, tensor, cotangent, needed):
    values, index = tensor.operands
    if needed[0]:
        yield values, graph.apply("gather", (cotangent, index), stem=f"d{tensor.name}_rows")


def _code(helper):
    def spell(printer, statement, texts):
        return f"{printer.use(helper)}({texts[0]}, {texts[1]}, {statement.tensor.shape[0]})"

    return spell


primitive(
    "scatter_add", vjp=_vjp, stem="table", helpers=(NUMPY, TORCH),
    spell={"numpy": _code(NUMPY), "torch": _code(TORCH),
           "text": lambda p, s, texts: f"scatter_add({texts[0]}, {texts[1]}, rows={s.tensor.shape[0]})",
           "latex": lambda p, s, texts: rf"\operatorname{{scatter\_add}}_{{{texts[1]}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("scatter add", texts[0], texts[1])})
