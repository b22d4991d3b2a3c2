"""sinusoid: the (length, width) constant table of "Attention Is All You Need", sin and cos of
position / 10000^(2i/width) in alternate columns. A constant has no derivative."""

from __future__ import annotations

from .primitive import primitive
from .registry import Helper

NUMPY = Helper("sinusoid", '''
def sinusoid(length, width, dtype):
    """The sinusoidal position encoding of "Attention Is All You Need": sin and cos of position / 10000^(2i/width)."""
    position = np.arange(length, dtype=dtype)[:, None]
    rate = np.exp(np.arange(0, width, 2, dtype=dtype) * (-np.log(10000.0) / width))
    table = np.zeros((length, width), dtype=dtype)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate)
    return table
''')
TORCH = Helper("sinusoid", '''
def sinusoid(length, width, dtype, device):
    """The sinusoidal position encoding of "Attention Is All You Need": sin and cos of position / 10000^(2i/width)."""
    position = torch.arange(length, dtype=dtype, device=device)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=dtype, device=device) * (-9.210340371976184 / width))  # ln 10000
    table = torch.zeros(length, width, dtype=dtype, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table
''')


def sinusoid_table(graph, length: int, width: int, stem: str):
    return graph.apply("sinusoid", (), stem=stem, shape=(length, width))


def _code(helper):
    def spell(printer, statement, texts):
        length, width = statement.shape
        return f"{printer.use(helper)}({length}, {width}, {printer.placement})"

    return spell


primitive(
    "sinusoid", vjp=lambda *_: iter(()), stem="positions", helpers=(NUMPY, TORCH),
    spell={"numpy": _code(NUMPY), "torch": _code(TORCH),
           "text": lambda p, s, texts: f"sinusoid({s.shape[0]}, {s.shape[1]})",
           "latex": lambda p, s, texts: r"P_{\sin}",
           "mathml": lambda p, s, texts: "<msub><mi>P</mi><mtext>sin</mtext></msub>"})
