"""argmax: the index of the first largest entry along the last axis, which is dropped (torch.argmax's; NaN counts as
the largest, as torch's does). Integer-valued: no derivative. Max pooling's gradient goes to this entry, one-hot."""

from __future__ import annotations

from .primitive import no_jvp, primitive


def first_max(graph, value, stem: str = "arg"):
    """The index of the first largest entry along the last axis of `value`."""
    return graph.apply("argmax", (value,), stem=stem, shape=value.shape[:-1], axes=(len(value.shape) - 1,))


def _numpy(printer, statement, texts):
    return f"{printer._module_format('numpy.argmax')}({texts[0]}, axis=-1)"


primitive(
    "argmax", vjp=lambda *_: iter(()), jvp=no_jvp, stem="arg", parenthesized=False, owns_array=True,
    spell={"numpy": _numpy,
           "torch": lambda p, s, texts: p._call("torch.argmax", texts[0], "dim=-1"),
           "text": lambda p, s, texts: f"argmax({texts[0]}, axis=-1)",
           "latex": lambda p, s, texts: rf"\operatorname{{argmax}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: p.named_call("argmax", texts[0])}, finite=True)
