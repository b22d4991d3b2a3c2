"""Calling an op on what forward computes with: symbolic tensors while symprop traces a model (the op adds to the
graph), torch tensors while `check` runs the same forward in torch (the op calls torch's own function)."""

from __future__ import annotations

import importlib
import sys

from ..graph import Value
from .tensor import Parameter, SymbolicTensor, kind_of
from .torch_eval import require_torch
from .trace import fail, running


def torch_module():
    return require_torch("running a model in torch")


def torch_function(qualified: str):
    """torch's function by its qualified name: torch.nn.functional.<name>."""
    module, _, name = qualified.rpartition(".")
    torch_module()
    return getattr(importlib.import_module(module), name)


def resolved(thing):
    """A Parameter as the tensor it stands for in the interpretation running now; anything else as it is."""
    return thing.resolve() if isinstance(thing, Parameter) else thing


def in_torch(*things) -> bool:
    """Whether these are torch's to compute: a torch tensor among them, and no symbolic one (a symbolic value with a
    torch constant, torch.maximum(y, torch.tensor(0.1)), is symprop's)."""
    torch = sys.modules.get("torch")
    return torch is not None and any(isinstance(t, torch.Tensor) for t in things) and \
        not any(isinstance(t, SymbolicTensor) for t in things)


def symbolic(thing, where: str) -> Value:
    """The Value of a tensor argument; refuses numbers, lambdas and the like."""
    if not isinstance(thing, SymbolicTensor):
        raise fail(f"{where} expects a tensor, got {kind_of(thing)}")
    return thing.value


def graph():
    return running().graph


def stem(base: str) -> str:
    """A name for a value made inside the module being called (h2 in layer 2)."""
    return running().stem(base)


def applied_twice(y: Value, function: str, loss: str) -> None:
    """A loss that applies `function` itself, to a value `function` made: a classic mistake, noted for the reader."""
    g = graph()
    if g.made_by.get(y.expr) == function:
        g.note(f"double {function}", loss)
