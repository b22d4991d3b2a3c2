"""Elementwise ops: functions of one value, each given by one SymPy expression in z (and the op's options).

An elementwise op has no derivative rule: sympy.diff differentiates its definition wherever the chain rule passes
through it. From one `Pointwise` object come its functional (F.silu), its layer (S.SiLU, with torch.nn's options,
TOML keys and torch twin), its Tensor methods (x.silu()) and, for a SymPy function (exp, tanh, Max), its public name
(symprop.exp), its name in expressions ("exp(z)"), and how each backend prints it where SymPy's printers do not.
"""

from __future__ import annotations

import inspect

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table
from ..declare.tensor import SymbolicTensor, elementwise, kind_of
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph.ir import z
from .registry import Op, Param, TorchNames, register


class Pointwise(Op):
    """An elementwise op.

    name: F.<name> and type = "<name>" in a spec; definition(z, **options): its value at z (default: sympy(z));
    sympy: the SymPy function expressions call it by (sp.exp, sp.Max), if any, under `expression_names`;
    params: its options, as torch names them; torch: torch's names (torch.module: S.<that name> is its layer);
    activation: F.<name> names its output h, and the document names its derivative, as `latex` writes it;
    spell, in_place, cost: how each backend prints its SymPy function where SymPy's printer does not, the call that
    applies it in place, and what one application costs (in passes over the array); python: the function on Python
    floats; reference: its SymPy function on torch tensors, where that is not torch's first function.
    public: whether symprop.<name> is its SymPy function on tensors (default: where expressions name it).
    `kinks` and `domain` describe it to its tests: where the derivative jumps, and the open interval it is defined on.
    finite: its value is finite wherever its argument is (as the backends spell it): the printers may then select
    between pieces by arithmetic, which a value that overflows would turn into nan.
    """

    def __init__(self, name: str, definition=None, *, sympy=None, expression_names=None, params=(),
                 torch=None, activation=False, latex="", spell=None, in_place=None, cost=None, kinks=(),
                 domain=(None, None), python=None, public=None, reference=None, doc="", finite=False):
        self.name, self.sympy, self.params, self.torch = name, sympy, tuple(params), torch or TorchNames()
        self._definition = definition
        self.expression_names = tuple((name,) if expression_names is None and sympy is not None else
                                      expression_names or ())
        self.activation, self.latex = activation, latex or rf"\operatorname{{{name}}}"
        self.spell, self.in_place, self.cost = dict(spell or {}), dict(in_place or {}), dict(cost or {})
        self.kinks, self.domain, self.doc, self.finite = tuple(kinks), domain, doc, finite
        self.python = python  # its SymPy function on Python floats, for the range checks of constants
        self.reference = reference  # its SymPy function on torch tensors, where torch's first function is not it
        if self.torch.functions and (activation or self.torch.module):
            self.functional = self._make_functional()
        if sympy is not None and (public if public is not None else bool(self.expression_names)):
            self.public = self._make_public()
        if self.torch.module:
            self.layer_class = _layer_class(self)

    # -- what it computes ------------------------------------------------------------------------------------
    def scalar(self, **options) -> sp.Expr:
        """The op's value at z, for these options."""
        meaning = self.meaningful({**{p.name: p.default for p in self.params}, **options})
        # an integral float as the exact integer: ELU's α = 1.0 would stay a factor 1.0·eᶻ, a pass over the array
        meaning = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in meaning.items()}
        return self._definition(z, **meaning) if self._definition else self.sympy(z)

    def apply(self, input, options: dict):
        """The op on a tensor: torch's function on a torch tensor; on a symbolic one, its value added to the graph,
        named h (and its definition kept for the document, where it is an activation)."""
        input = resolved(input)
        if in_torch(input):
            if not self.torch.functions:  # the identity
                return input
            return torch_function(self.torch.functions[0])(input, **self.meaningful(options))
        value = symbolic(input, f"F.{self.name}")
        graph = running().graph
        result = graph.activate(value, self.scalar(**options), running().stem("h"), self.latex if self.activation
                                else "")
        graph.made_by[result.expr] = self.name
        return SymbolicTensor(result)

    # -- its front ends ------------------------------------------------------------------------------------------
    def _make_functional(self):
        op = self

        def functional(input, *args, **kwargs):
            return op.apply(input, op.bind(args, kwargs, f"F.{op.name}"))

        parameters = [inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default) for p in self.params]
        functional.__name__ = functional.__qualname__ = self.name
        functional.__signature__ = inspect.Signature(parameters)
        functional.__doc__ = self.doc or f"{self.name}, elementwise, as torch's {self.torch.functions[0]}."
        return functional

    def _make_public(self):
        """symprop.<name>: the SymPy function on tensors (symprop.exp(x)), or torch's on torch tensors."""
        op = self

        def function(*inputs):
            inputs = tuple(resolved(x) for x in inputs)
            if in_torch(*inputs):
                return (op.reference or torch_function(op.torch.functions[0]))(*inputs)
            if not any(isinstance(x, SymbolicTensor) for x in inputs):
                raise fail(f"symprop.{op.name} expects a tensor, got {', '.join(map(kind_of, inputs))}")
            return elementwise(op.sympy, inputs, f"symprop.{op.name}")

        function.__name__ = function.__qualname__ = self.name
        function.__doc__ = f"{self.name}, elementwise: symbolic while tracing, torch's on torch tensors."
        return function


def pointwise(name: str, definition=None, **attributes) -> Pointwise:
    """Make and register an elementwise op (see Pointwise)."""
    return register(Pointwise(name, definition, **attributes))


class PointwiseLayer(Module):
    """The layer of an elementwise op: S.SiLU(), S.ELU(alpha=0.5), as torch.nn has them."""

    op: Pointwise = None

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.options = self.op.bind(args, kwargs, type(self).__name__)

    @classmethod
    def from_toml(cls, table: Table, width: int):
        return cls(**{p.name: table.get(p.name, _checked(p), p.default) for p in cls.op.params if p.meaning})

    @classmethod
    def from_torch(cls, module):
        """The layer that the torch.nn module of the same name is, with its options."""
        return cls(**{p.name: getattr(module, p.name) for p in cls.op.params if hasattr(module, p.name)})

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        return self.op.apply(x, self.options)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, type(self).__name__)(**self.op.meaningful(self.options))

    def describe(self) -> str:
        changed = [f"{p.name}={self.options[p.name]!r}" for p in self.op.params
                   if p.meaning and self.options[p.name] != p.default]
        return f"{type(self).__name__}({', '.join(changed)})"


def _checked(param: Param):
    """A TOML value checked as the op checks it."""
    return (lambda value: param.check(value, param.name)) if param.check else (lambda value: value)


def _layer_class(op: Pointwise) -> type:
    def __init__(self, *args, **kwargs):  # its own, for its own signature (help(S.ELU) shows alpha)
        PointwiseLayer.__init__(self, *args, **kwargs)

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] +
        [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default) for p in op.params])
    return type(op.torch.module, (PointwiseLayer,), {
        "op": op, "kind": op.name, "toml_keys": tuple(p.name for p in op.params if p.meaning), "__init__": __init__,
        "__doc__": op.doc or f"torch.nn.{op.torch.module}: {op.name}, elementwise.", "__module__": "symprop"})


# -- the checks of options --------------------------------------------------------------------------------------
def number(value, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float("-inf") < value < float("inf"):
        raise SymPropError(f"{name} must be a finite number, got {value!r}")
    return value


def positive_number(value, name: str) -> float:
    if number(value, name) <= 0:
        raise SymPropError(f"{name} must be a positive number, got {value!r}")
    return value


def one_of(*allowed):
    def check(value, name: str):
        if value not in allowed:
            raise SymPropError(f"{name} must be {' or '.join(map(repr, allowed))}, got {value!r}")
        return value

    return check


def boolean(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise SymPropError(f"{name} must be True or False, got {value!r}")
    return value


INPLACE = Param("inplace", False, boolean, meaning=False)  # torch's in-place flag: the value is the same either way
