"""clamp: x held within [min, max], as torch.clamp (and Tensor.clamp, clip). Defined piecewise, so that its derivative
is 1 at the bounds themselves, as torch's is (relu's and hardtanh's, written with Max and Min, are 0 there)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, torch_function
from ..declare.tensor import SymbolicTensor, elementwise
from ..declare.trace import fail
from ..functions import DefinedFunction
from .math import maximum, minimum
from .pointwise import pointwise
from .registry import TorchNames


class clamp(DefinedFunction):
    """clamp(x, low, high): low where x < low, high where x > high, x between."""

    nargs = 3

    @staticmethod
    def definition(x, low, high):
        return sp.Piecewise((low, x < low), (high, x > high), (x, True))


class clamp_min(DefinedFunction):
    """clamp_min(x, low): low where x < low, x elsewhere."""

    nargs = 2

    @staticmethod
    def definition(x, low):
        return sp.Piecewise((low, x < low), (x, True))


class clamp_max(DefinedFunction):
    """clamp_max(x, high): high where x > high, x elsewhere."""

    nargs = 2

    @staticmethod
    def definition(x, high):
        return sp.Piecewise((high, x > high), (x, True))


def _spelled(function: str, bounds: str):
    """torch.clamp(x, min=a, max=b) and the like: `bounds` names the arguments after x ("min,max")."""
    def spell(printer, expr):
        x, *rest = (printer._print(a) for a in expr.args)
        named = ", ".join(f"{name}={value}" for name, value in zip(bounds.split(","), rest, strict=True))
        return f"{printer._module_format(function)}({x}, {named})"

    return spell


def _numpy(function: str):
    def spell(printer, expr):
        return f"{printer._module_format(function)}({', '.join(printer._print(a) for a in expr.args)})"

    return spell


def clamp_tensor(input, min=None, max=None):  # noqa: A002 - torch's names
    """input held within [min, max], as torch.clamp; a bound that is a tensor is the elementwise maximum (minimum)."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(TORCH.functions[0])(input, min=resolved(min), max=resolved(max))
    if min is None and max is None:
        raise fail("clamp: give min, max or both")
    if not isinstance(input, SymbolicTensor):
        raise fail("clamp expects a tensor")
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (min, max) if b is not None):
        out = input if min is None else elementwise(maximum, (input, min), "clamp")
        return out if max is None else elementwise(minimum, (out, max), "clamp")
    if max is None:
        return elementwise(lambda x: clamp_min(x, min), (input,), "clamp")
    if min is None:
        return elementwise(lambda x: clamp_max(x, max), (input,), "clamp")
    return elementwise(lambda x: clamp(x, min, max), (input,), "clamp")


clamp_tensor.__name__ = clamp_tensor.__qualname__ = "clamp"
TORCH = TorchNames(("torch.clamp", "torch.clip"), ("clamp", "clip"), "", ("aten.clamp.default", "aten.clamp.Tensor"))
pointwise("clamp", sympy=clamp, expression_names=(), public=False, torch=TORCH, kinks=(0.0,),
          spell={"numpy": _numpy("numpy.clip"), "torch": _spelled("torch.clamp", "min,max")}).public = clamp_tensor
pointwise("clamp_min", sympy=clamp_min, expression_names=(), public=False,
          torch=TorchNames(("torch.clamp_min",), ("clamp_min",), "", ("aten.clamp_min.default",)), kinks=(0.0,),
          spell={"numpy": _numpy("numpy.maximum"), "torch": _spelled("torch.clamp", "min")}).public = \
    lambda input, min: clamp_tensor(input, min=min)  # noqa: A002 - torch's names
pointwise("clamp_max", sympy=clamp_max, expression_names=(), public=False,
          torch=TorchNames(("torch.clamp_max",), ("clamp_max",), "", ("aten.clamp_max.default",)), kinks=(0.0,),
          spell={"numpy": _numpy("numpy.minimum"), "torch": _spelled("torch.clamp", "max")}).public = \
    lambda input, max: clamp_tensor(input, max=max)  # noqa: A002 - torch's names
