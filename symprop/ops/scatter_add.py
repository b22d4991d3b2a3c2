"""scatter_add: a table of rows, row r the sum of the rows of values whose index is r: the adjoint of a gather, whose
adjoint is that gather (the transpose of the one-hot contraction is the contraction itself)."""

from __future__ import annotations

from .primitive import linear_jvp, primitive
from .registry import Helper

NUMPY = Helper("scatter_add", '''
def scatter_add(values, index, rows, skip=None):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (but for index `skip`, left
    zero): a one-hot matrix times the rows, where that matrix is small (BLAS is some tenfold faster than np.add.at),
    else np.add.at."""
    row, ids = values.shape[index.ndim:], index.reshape(-1)
    flat = values.reshape(ids.size, int(np.prod(row)))  # not -1: an empty batch has no size to infer it from
    if skip is not None:
        flat = flat * (ids != skip)[:, None]
    if rows * ids.size <= 1 << 22:
        return ((ids == np.arange(rows)[:, None]).astype(values.dtype) @ flat).reshape((rows,) + row)
    out = np.zeros((rows, flat.shape[1]), dtype=values.dtype)
    np.add.at(out, ids, flat)
    return out.reshape((rows,) + row)
''')
TORCH = Helper("scatter_add", '''
def scatter_add(values, index, rows, skip=None):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (index_add_), but for index
    `skip`, left zero."""
    row = values.shape[index.dim():]
    out = torch.zeros((rows, *row), dtype=values.dtype, device=values.device)
    out.index_add_(0, index.reshape(-1), values.reshape(-1, *row))
    if skip is not None:
        out[skip] = 0
    return out
''')


def _vjp(graph, tensor, cotangent, needed):
    values, index = tensor.operands
    if needed[0] and tensor.skip is not None:
        raise NotImplementedError("the derivative of a scatter-add that skips an index (second order through an "
                                  "embedding's padding_idx)")
    if needed[0]:
        yield values, graph.apply("gather", (cotangent, index), stem=f"d{tensor.name}_rows")


def _code(helper):
    def spell(printer, statement, texts):
        skip = "" if statement.tensor.skip is None else f", skip={statement.tensor.skip}"
        return f"{printer.use(helper)}({texts[0]}, {texts[1]}, {statement.tensor.shape[0]}{skip})"

    return spell


def _latex(printer, statement, texts):
    below = texts[1] if statement.tensor.skip is None else rf"{texts[1]} \ne {statement.tensor.skip}"
    return rf"\operatorname{{scatter\_add}}_{{{below}}}\left({texts[0]}\right)"


primitive(
    "scatter_add", vjp=_vjp, jvp=linear_jvp, stem="table", helpers=(NUMPY, TORCH),
    spell={"numpy": _code(NUMPY), "torch": _code(TORCH),
           "text": lambda p, s, texts: f"scatter_add({texts[0]}, {texts[1]}, rows={s.tensor.shape[0]}"
                                       + ("" if s.tensor.skip is None else f", skip={s.tensor.skip}") + ")",
           "latex": _latex,
           "mathml": lambda p, s, texts: p.named_call("scatter add", texts[0], texts[1])}, finite=True)
