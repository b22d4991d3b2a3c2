"""detach: a value read as a constant, x.detach() (jax's stop_gradient): no gradient flows through it, so the chain
rule stops there; the code reads the value itself (a view of its array). torch.detach, Tensor.detach, and what a
torch.no_grad() block computes inside forward."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved
from ..declare.tensor import SymbolicTensor, as_value, traced_graph
from ..declare.trace import running
from .primitive import no_jvp, primitive
from .registry import TorchNames


def detach(x):
    """x, through which no gradient flows."""
    x = resolved(x)
    if in_torch(x):
        return x.detach()
    return SymbolicTensor(traced_graph().apply("detach", (as_value(x, "detach"),), stem=running().stem("detached")))


def _no_vjp(graph, tensor, cotangent, needed):
    return iter(())  # read as a constant


primitive(
    "detach", shape=lambda operands: operands[0].shape, vjp=_no_vjp, jvp=no_jvp, stem="detached", view=True,
    stops_gradient=True,
    torch=TorchNames(("torch.detach",), ("detach",), "", ("aten.detach.default",)), functional=detach,
    spell={"numpy": lambda p, s, texts: texts[0], "torch": lambda p, s, texts: f"{texts[0]}.detach()",
           "text": lambda p, s, texts: f"detach({texts[0]})",
           "latex": lambda p, s, texts: rf"\operatorname{{detach}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("detach", texts[0])}, finite=True)
