"""Embedding, as torch.nn.Embedding: integer token ids in, rows of a learned table out (a gather, whose
adjoint is a scatter-add of rows: graph.ir's rule); its parameter, TOML keys and torch twin."""

from __future__ import annotations

from .. import functional as F
from ..module import Module
from ..options import Table, positive
from ..tensor import Parameter


class Embedding(Module):
    kind, toml_keys = "embedding", ("embedding_dim",)  # num_embeddings: the spec's vocabulary

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        from ...errors import SymPropError

        self.num_embeddings = positive(num_embeddings, "num_embeddings")
        self.embedding_dim = positive(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            raise SymPropError("Embedding(padding_idx=...) is not supported yet; mask the loss with ignore_index")
        self.weight = Parameter((num_embeddings, embedding_dim), init=("normal", 1.0))  # torch's N(0, 1)

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(width, table.get("embedding_dim", positive))  # what flows in: ids in [0, vocabulary)

    @classmethod
    def from_torch(cls, module):
        from ...errors import SymPropError

        if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
            raise SymPropError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        return cls(module.num_embeddings, module.embedding_dim, module.padding_idx)

    def output_width(self, width: int) -> int:
        return self.embedding_dim

    def forward(self, tokens):
        return F.embedding(tokens, self.weight)

    def symbol_stem(self, name: str, tag: str) -> str:
        return "E" + tag

    def torch_twin(self):
        import torch

        return torch.nn.Embedding(self.num_embeddings, self.embedding_dim)

    def describe(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"
