"""sinusoid: the (length, width) constant table of "Attention Is All You Need", sin and cos of
position / 10000^(2i/width) in alternate columns. A constant has no derivative."""

from __future__ import annotations

from .primitive import no_jvp, primitive
from .registry import Helper, constant_rule

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


@constant_rule
def _table(graph, tensor):
    """A positional table that equals the sinusoidal encoding (its first rows, with axes of one, as a buffer `pe`
    sliced by the length holds them: (1, length, width), or (length, 1, width) sequence first): the sinusoid op,
    written as its formula."""
    import math

    import torch

    sizes = [d for d in tensor.shape if d != 1]
    if len(sizes) != 2 or not tensor.is_floating_point() or sizes[1] % 2 or tensor.shape[-1] != sizes[1]:
        return None
    length, width = sizes
    position = torch.arange(length, dtype=torch.float64)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * rate), torch.cos(position * rate)
    tolerance = 1e-12 if tensor.dtype == torch.float64 else 1e-6
    if not torch.allclose(tensor.detach().double().reshape(length, width), table, rtol=0, atol=tolerance):
        return None
    value = sinusoid_table(graph, length, width, "positions")
    return value if tensor.dim() == 2 else \
        graph.apply("rearrange", (value,), shape=tuple(tensor.shape), split=value.shape, perm=(0, 1))


def _code(helper):
    def spell(printer, statement, texts):
        length, width = statement.shape
        return f"{printer.use(helper)}({length}, {width}, {printer.placement})"

    return spell


primitive(
    "sinusoid", vjp=lambda *_: iter(()), jvp=no_jvp, stem="positions", helpers=(NUMPY, TORCH),
    spell={"numpy": _code(NUMPY), "torch": _code(TORCH),
           "text": lambda p, s, texts: f"sinusoid({s.shape[0]}, {s.shape[1]})",
           "latex": lambda p, s, texts: r"P_{\sin}",
           "mathml": lambda p, s, texts: "<msub><mi>P</mi><mtext>sin</mtext></msub>"}, finite=True)
