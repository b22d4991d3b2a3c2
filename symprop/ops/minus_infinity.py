"""minus_infinity: −inf where a mask holds and 0 elsewhere, added to scores that a softmax reads (x.masked_fill(mask,
float("-inf")) with a mask computed by the model, such as the padding of its input ids). It has no derivative: its
operand is a mask."""

from __future__ import annotations

from .primitive import no_jvp, primitive


def minus_infinity(graph, mask, stem: str = "masked"):
    """The additive mask of `mask` (1 where it holds): −inf there, 0 elsewhere."""
    return graph.apply("minus_infinity", (mask,), stem=stem, shape=mask.shape)


def _numpy(printer, statement, texts):
    where, inf = printer._module_format("numpy.where"), printer._module_format("numpy.inf")
    return printer.in_dtype(f"{where}({texts[0]} != 0, -{inf}, 0)")


def _torch(printer, statement, texts):
    return printer.in_dtype(printer._call("torch.where", f"{texts[0]} != 0", 'float("-inf")', "0.0"))


primitive(
    "minus_infinity", vjp=lambda *_: iter(()), jvp=no_jvp, stem="masked", parenthesized=True,
    spell={"numpy": _numpy, "torch": _torch, "text": lambda p, s, texts: f"minus_infinity({texts[0]})",
           "latex": lambda p, s, texts: rf"M_{{-\infty}}\left({texts[0]}\right)",
           "mathml": lambda p, s, texts: f"<msub><mi>M</mi><mrow><mo>-</mo><mi>∞</mi></mrow></msub><mo>(</mo>"
                                         f"{texts[0]}<mo>)</mo>"})
