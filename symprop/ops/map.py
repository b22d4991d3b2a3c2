"""map: an elementwise value stored under a name of its own. Later expressions read the name, so fusion stops there and
expressions stay small through deep stacks; its cotangent flows on through its expression unchanged."""

from __future__ import annotations

from .primitive import primitive


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # a stored elementwise value: the chain rule goes on through it
        yield tensor.operands[0], cotangent


def _jvp(graph, tensor, tangents):
    return tangents[0]  # its expression's, which reads the stored value where it can (forward_mode.py)


def _same(printer, statement, texts):
    return texts[0]


primitive("map", shape=lambda operands: operands[0].shape, vjp=_vjp, jvp=_jvp, parenthesized=False, owns_array=True,
          spell=dict.fromkeys(("numpy", "torch", "text", "latex", "mathml"), _same), finite=True)
