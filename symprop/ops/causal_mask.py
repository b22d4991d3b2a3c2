"""causal_mask: an (s, s) constant, -inf above the diagonal and 0 elsewhere, added to attention's scores so that
position s attends to positions t <= s (torch's generate_square_subsequent_mask). A constant has no derivative."""

from __future__ import annotations

from .primitive import no_jvp, primitive
from .registry import constant_rule


def causal_mask(graph, size: int, stem: str = "mask"):
    return graph.apply("causal_mask", (), stem=stem, shape=(size, size))


def causal_size(mask) -> int | None:
    """T where a torch tensor is the causal mask of T positions, up to leading axes of size 1: True, or -inf, strictly
    above the diagonal, and False, or 0, elsewhere (torch.tril(ones) == 0, generate_square_subsequent_mask); None
    where it is not."""
    import torch

    while mask.dim() > 2 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return None
    above = torch.ones(mask.shape, dtype=torch.bool).triu(1)
    masked = mask if mask.dtype == torch.bool else torch.isneginf(mask)
    if torch.equal(masked, above) and (mask.dtype == torch.bool or not mask[~above].any()):
        return mask.shape[0]
    return None


@constant_rule
def _additive(graph, tensor):
    """A float mask of -inf above the diagonal, added to attention's scores: the causal mask."""
    size = causal_size(tensor) if tensor.is_floating_point() else None
    return None if size is None else causal_mask(graph, size)


def _numpy(printer, statement, texts):
    size = statement.shape[0]
    full, inf = printer._module_format("numpy.full"), printer._module_format("numpy.inf")
    return f"{printer._module_format('numpy.triu')}({full}(({size}, {size}), -{inf}, dtype={printer.dtype_text}), 1)"


def _torch(printer, statement, texts):
    size = statement.shape[0]
    full = printer._call("torch.full", f"({size}, {size})", 'float("-inf")', f"dtype={printer.dtype_text}",
                         f"device={printer.device_text}")
    return printer._call("torch.triu", full, "diagonal=1")


primitive(
    "causal_mask", vjp=lambda *_: iter(()), jvp=no_jvp, stem="mask",
    spell={"numpy": _numpy, "torch": _torch, "text": lambda p, s, texts: f"causal_mask({s.shape[0]})",
           "latex": lambda p, s, texts: r"M_{\text{causal}}",
           "mathml": lambda p, s, texts: "<msub><mi>M</mi><mtext>causal</mtext></msub>"})
