"""padding_mask: a key padding mask, (n, t) booleans, True where a key is padding, as the additive (n, 1, 1, t) mask
of -inf there and 0 elsewhere, broadcast over heads and queries. It has no derivative: its operand is booleans."""

from __future__ import annotations

from .primitive import no_jvp, primitive


def padding_mask(graph, padding, stem: str):
    n, t = padding.shape
    return graph.apply("padding_mask", (padding,), stem=stem, shape=(n, 1, 1, t))


def _numpy(printer, statement, texts):
    where, inf = printer._module_format("numpy.where"), printer._module_format("numpy.inf")
    return printer.in_dtype(f"{where}({texts[0]}[:, None, None, :], -{inf}, 0)")


def _torch(printer, statement, texts):
    return printer.in_dtype(printer._call("torch.where", f"{texts[0]}[:, None, None, :]", 'float("-inf")', "0.0"))


primitive(
    "padding_mask", vjp=lambda *_: iter(()), jvp=no_jvp, stem="pad", parenthesized=False,
    spell={"numpy": _numpy, "torch": _torch, "text": lambda p, s, texts: f"padding_mask({texts[0]})",
           "latex": lambda p, s, texts: rf"M_{{\text{{pad}}}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: f"<msub><mi>M</mi><mtext>pad</mtext></msub><mo>(</mo>{texts[0]}<mo>)</mo>"},
    finite=True)
