"""embedding: integer token ids in, rows of a learned table out; F.embedding, nn.Embedding (its parameter, TOML keys
and torch twin). It is a gather, whose adjoint is a scatter-add of rows (gather.py)."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, positive
from ..declare.tensor import Parameter, SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Value
from .onehot import bound_ids, id_source
from .registry import TorchNames, defop


def _arange(ids):
    import torch

    return torch.arange(ids.numel(), dtype=ids.dtype)


def functional(input, weight, padding_idx=None):
    """The rows of `weight` (num_embeddings, dim) that the integer ids in `input` pick, as torch's F.embedding; the
    row at `padding_idx` is read as a constant (no gradient flows into it)."""
    input, weight_ = resolved(input), resolved(weight)
    if not isinstance(input, SymbolicTensor) and not isinstance(weight_, SymbolicTensor):
        return torch_function(TORCH.functions[0])(input, weight_, padding_idx)
    table = symbolic(weight_, "F.embedding weight")
    if padding_idx is not None:
        if not isinstance(padding_idx, int) or isinstance(padding_idx, bool) or \
                not -table.shape[0] <= padding_idx < table.shape[0]:
            raise fail(f"F.embedding: padding_idx must be an index of the table's {table.shape[0]} rows, got "
                       f"{padding_idx!r}")
        padding_idx %= table.shape[0]  # as torch reads a negative one
    if in_torch(input):  # constant ids: positions, torch.arange(t) (or of shape (1, t)), are rows of the table
        if padding_idx is not None:
            raise fail("F.embedding of constant ids with a padding_idx is not supported")
        ids = input.reshape(-1)
        if any(d != 1 for d in input.shape[:-1]) or not ids.numel() or not bool((ids == ids[0] + _arange(ids)).all()):
            raise fail("F.embedding of constant ids other than consecutive positions (torch.arange) is not supported")
        start = int(ids[0])
        rows = weight_ if (start, ids.numel()) == (0, table.shape[0]) else weight_[start:start + ids.numel()]
        return rows if input.dim() == 1 else rows.reshape(*input.shape, table.shape[1])
    if isinstance(input, SymbolicTensor) and input.value.expr.is_Integer:  # torch.full((B, 1), SOS): one id
        return _one_row(table, int(input.value.expr), input.value.shape, padding_idx)
    trace = running()
    tensor, first = id_source(trace.graph, input.value) if isinstance(input, SymbolicTensor) else (None, None)
    if tensor is None or tensor.op != "input":
        raise fail("F.embedding reads integer token ids: an input of the model as given, not a computed value")
    if len(table.shape) != 2:
        raise fail(f"F.embedding: the table must be (num_embeddings, dim), got {shape_text(table.shape)}")
    bound_ids(tensor, first, table.shape[0])
    return SymbolicTensor(trace.graph.apply("gather", (table, input.value), stem=trace.stem("emb"), skip=padding_idx))


def _one_row(table, row: int, shape: tuple, padding_idx) -> SymbolicTensor:
    """The table's row `row` for each of the ids of `shape`, all that one id (a decoder's start token for every
    sequence of the batch): the row, broadcast."""
    if not 0 <= row < table.shape[0]:
        raise fail(f"F.embedding: id {row} is not a row of the table's {table.shape[0]}")
    if row == padding_idx:
        raise fail("F.embedding: every id is the padding_idx, whose row takes no gradient; not supported")
    picked = SymbolicTensor(table)[row:row + 1].reshape(*(1 for _ in shape), table.shape[1]).value  # rank kept
    return SymbolicTensor(Value(picked.expr, (*shape, table.shape[1])))


functional.__name__ = functional.__qualname__ = "embedding"


class Embedding(Module):
    """torch.nn.Embedding: the rows of a learned table, picked by integer ids."""

    kind, toml_keys = "embedding", ("embedding_dim",)  # num_embeddings: the spec's vocabulary

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings = positive(num_embeddings, "num_embeddings")
        self.embedding_dim = positive(embedding_dim, "embedding_dim")
        if padding_idx is not None and (not isinstance(padding_idx, int) or isinstance(padding_idx, bool) or
                                        not -num_embeddings <= padding_idx < num_embeddings):
            raise SymPropError(f"Embedding: padding_idx must be an index of the {num_embeddings} rows, got "
                               f"{padding_idx!r}")
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        # torch's N(0, 1); torch also zeroes the padding row, which init_params leaves as drawn (it never trains)
        self.weight = Parameter((num_embeddings, embedding_dim), init=("normal", 1.0))

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("embedding_dim", positive))  # what flows in: ids in [0, vocabulary)

    @classmethod
    def from_torch(cls, module):
        if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
            raise SymPropError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        return cls(module.num_embeddings, module.embedding_dim, module.padding_idx)

    def output_width(self, width: int) -> int:
        return self.embedding_dim

    def forward(self, tokens):
        return functional(tokens, self.weight, self.padding_idx)

    def symbol_stem(self, name: str, tag: str) -> str:
        return "E" + tag

    def torch_twin(self):
        import torch

        return torch.nn.Embedding(self.num_embeddings, self.embedding_dim, padding_idx=self.padding_idx)

    def describe(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{padding})"


TORCH = TorchNames(("torch.nn.functional.embedding",), (), "Embedding", ("aten.embedding.default",))
def _aten(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    if scale_grad_by_freq or sparse:
        raise fail("embedding: scale_grad_by_freq and sparse are not supported")
    return functional(indices, weight, padding_idx if padding_idx is not None and padding_idx >= 0 else None)


defop("embedding", torch=TORCH, layer=Embedding, functional=functional, init_doc="Embedding N(0, 1)",
      front={"aten.embedding.default": _aten})
