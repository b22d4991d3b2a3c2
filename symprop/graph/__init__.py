"""Stage 2, graph: the declared model lowered to tensors joined by fused elementwise expressions."""

from .ir import Graph, Tensor, Value

__all__ = ["Graph", "Tensor", "Value"]
