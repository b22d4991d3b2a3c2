"""logsumexp: log Σ_k e^(z_k) over an axis (the last, or one swapped with it), computed as m + log Σ_k e^(z_k − m),
m = max_k z_k, so that no exp overflows (softmax.py's shifted exps); its derivative is the softmax. torch.logsumexp,
Tensor.logsumexp."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.tensor import SymbolicTensor
from ..declare.trace import running
from ..graph import Value
from .rearrange import transpose
from .registry import TorchNames, defop
from .softmax import _shifted_exps, swapped_axis


def logsumexp(input, dim, keepdim: bool = False):
    """torch.logsumexp(input, dim, keepdim); over an axis but the last, that axis swapped with the last."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(TORCH.functions[0])(input, dim, keepdim=keepdim)
    dim = dim[0] if isinstance(dim, (tuple, list)) and len(dim) == 1 else dim
    axis = swapped_axis(input, dim, "torch.logsumexp")
    if axis is not None:
        kept = transpose(logsumexp(transpose(input, axis, -1), -1, keepdim=True), axis, -1)
        return kept if keepdim else kept.squeeze(axis)
    value, trace = symbolic(input, "torch.logsumexp"), running()
    g = trace.graph
    shifted, _, total = _shifted_exps(g, value, "_" + trace.stem("lse"))
    top = value.expr - shifted.expr  # the row max (book: 0)
    kept = value.shape[:-1] + (1,)
    result = g.label(Value(top + sp.log(total.expr), kept), trace.stem("lse"))
    if keepdim:
        return SymbolicTensor(result)
    return SymbolicTensor(result).reshape(*value.shape[:-1]) if len(value.shape) > 1 else SymbolicTensor(result)


TORCH = TorchNames(("torch.logsumexp",), ("logsumexp",), "", ("aten.logsumexp.default",))
defop("logsumexp", torch=TORCH, functional=logsumexp)
