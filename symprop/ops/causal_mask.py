"""causal_mask: an (s, s) constant, -inf above the diagonal and 0 elsewhere, added to attention's scores so that
position s attends to positions t <= s (torch's generate_square_subsequent_mask). A constant has no derivative."""

from __future__ import annotations

from .primitive import primitive


def causal_mask(graph, size: int, stem: str):
    return graph.apply("causal_mask", (), stem=stem, shape=(size, size))


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
    "causal_mask", vjp=lambda *_: iter(()), stem="mask",
    spell={"numpy": _numpy, "torch": _torch, "text": lambda p, s, texts: f"causal_mask({s.shape[0]})",
           "latex": lambda p, s, texts: r"M_{\text{causal}}",
           "mathml": lambda p, s, texts: "<msub><mi>M</mi><mtext>causal</mtext></msub>"})
