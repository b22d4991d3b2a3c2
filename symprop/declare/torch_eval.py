"""SymPy expressions evaluated with torch operations: custom activations and losses, run in torch.

Walking the SymPy tree with torch's functions (never differentiating it) is how the torch run of a
model computes an `Elementwise` layer or an `ElementwiseLoss`, so autograd, not symprop, derives them.
Each function is evaluated by the torch function its op names first (exp: torch.exp).
"""

from __future__ import annotations

import importlib

import sympy as sp

from ..errors import SymPropError
from ..ops.registry import by_function


def require_torch(purpose: str = "checking"):
    """torch, or a one-line error that says how to install it."""
    try:
        import torch
    except ImportError:
        raise SymPropError(f"{purpose} needs PyTorch: pip install -c constraints.txt 'symprop[torch]'") from None
    return torch


def to_torch(expr: sp.Expr, env: dict):
    """Evaluate a SymPy expression with torch operations; env maps symbol names to tensors."""
    torch = require_torch()

    def as_tensor(value):  # numbers in float64: torch's default float32 would round them
        return value if torch.is_tensor(value) else torch.as_tensor(value, dtype=torch.float64)

    def walk(e):
        if e.is_Symbol:
            return env[e.name]
        if e.is_Number or e in (sp.pi, sp.E):
            return float(e)
        args = [walk(a) for a in e.args]
        if e.is_Add:
            return _fold(lambda a, b: a + b, args)
        if e.is_Mul:
            return _fold(lambda a, b: a * b, args)
        if e.is_Pow:
            base, exponent = args
            return as_tensor(base) ** exponent
        op = by_function(type(e))
        if op is None or not (op.torch.functions or op.reference):
            raise NotImplementedError(f"no torch reference for {type(e).__name__}")
        function = op.reference
        if function is None:
            module, _, name = op.torch.functions[0].rpartition(".")
            function = getattr(importlib.import_module(module), name)
        tensors = [as_tensor(a) for a in args]
        return function(*tensors) if len(tensors) <= 2 else _fold(function, tensors)  # max(a, b, c), pairwise

    return walk(expr)


def _fold(fn, items):
    result = items[0]
    for item in items[1:]:
        result = fn(result, item)
    return result
