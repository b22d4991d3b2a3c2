"""linear: x @ W.T + b over the last axis; F.linear, nn.Linear (its parameters, TOML keys and torch twin).

The product is one contraction (einsum "ni,oi->no"), whose derivative follows from its index spec (einsum.py)."""

from __future__ import annotations

import math

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.options import Table, flag, positive
from ..declare.tensor import Parameter, SymbolicTensor, as_value, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..plan.uses import Uses
from ..program import Statement
from .einsum import contraction_form, inlined_products
from .registry import Call, TorchNames, call, defop, plan_rule


def linear_graph(g: Graph, value: Value, weight: Value, bias, name: str) -> Value:
    """value @ weight.T + bias over the last axis; `name` labels the result.

    `bias` is a Value, None, or a function that makes the bias parameter (after the product, so
    that tensors are numbered in the order they are computed)."""
    name = g.fresh(name).name  # z_fc1, then z_fc1_1 for a layer applied again: its product and δ follow it
    lead = "nsabc"[:len(value.shape) - 1]
    out = g.apply("einsum", (value, weight), stem="mm" + (name[1:] if name[0] == "z" else name),
                  spec=f"{lead}i,oi->{lead}o")
    g.cotangent_names[out.expr] = f"d{name}"
    bias = bias() if callable(bias) else bias
    if bias is not None:
        out = Value(out.expr + bias.expr, out.shape)
    return g.label(out, name, reserved=True)


def functional(input, weight, bias=None):
    """input @ weight.T + bias, over the last axis of input, as torch's F.linear."""
    input, weight_ = resolved(input), resolved(weight)
    if in_torch(input, weight_):
        return torch_function(TORCH.functions[0])(input, weight_, resolved(bias))
    value, w = symbolic(input, "F.linear"), symbolic(weight_, "F.linear weight")
    if len(w.shape) != 2 or not value.shape or value.shape[-1] != w.shape[1]:
        raise fail(f"F.linear: input {shape_text(value.shape)} and weight {shape_text(w.shape)} do not fit "
                   "(the weight is (outputs, inputs))")

    def make_bias():  # after the product, so that values are numbered in the order they are computed
        if bias is None:
            return None
        b = as_value(bias, "F.linear bias")
        if b.shape not in ((w.shape[0],), ()):
            raise fail(f"F.linear: bias {shape_text(b.shape)} does not fit weight {shape_text(w.shape)}")
        return b

    trace = running()
    return SymbolicTensor(linear_graph(trace.graph, value, w, make_bias, trace.stem("z")))


functional.__name__ = functional.__qualname__ = "linear"


class Linear(Module):
    """torch.nn.Linear: x @ W.T + b."""

    kind, toml_keys = "linear", ("outputs", "bias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = positive(in_features, "in_features")
        self.out_features = positive(out_features, "out_features")
        flag(bias, "bias")
        bound = 1 / math.sqrt(in_features)  # torch's default: U(±1/√fan_in), weight and bias alike
        self.weight = Parameter((out_features, in_features), init=("uniform", bound))
        self.bias = Parameter((out_features,), init=("uniform", bound)) if bias else None

    @classmethod
    def from_toml(cls, table: Table, width: int):
        if isinstance(width, tuple):
            raise SymPropError(f"linear takes a vector per sample, and what flows in has shape {width}: put a layer "
                               "of type = \"flatten\" before it")
        return cls(width, table.get("outputs", positive), table.get("bias", flag, True))

    @classmethod
    def from_torch(cls, module):
        """The layer that torch.nn.Linear `module` is."""
        return cls(module.in_features, module.out_features, bias=module.bias is not None)

    def output_width(self, width: int) -> int:
        return self.out_features

    def forward(self, x):
        width = x.shape[-1] if getattr(x, "shape", ()) else None
        if width != self.in_features:
            raise fail(f"Linear expects {self.in_features} inputs, but what flows in has shape "
                       f"{shape_text(getattr(x, 'shape', ()))}")
        return functional(x, self.weight, self.bias)

    def symbol_stem(self, name: str, tag: str) -> str:
        return {"weight": "w", "bias": "b"}[name] + tag

    def torch_twin(self):
        import torch

        return torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)

    def describe(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}{'' if self.bias is not None else ', bias=False'})"


# -- one call, where the backend has one: x @ w.T + b as torch's F.linear, one addmm, as its own Linear runs it ------
def _torch_linear(printer, statement, texts, into):
    return f"{printer._module_format('torch.nn.functional.linear')}({', '.join(texts)})"


TORCH = TorchNames(("torch.nn.functional.linear",), (), "Linear", ("aten.linear.default",))
defop("linear", torch=TORCH, layer=Linear, functional=functional, init_doc="Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
      calls={"torch": Call(_torch_linear)})


@plan_rule
def one_call(uses: Uses, shapes: dict, backend: str) -> Uses:
    """A product of an array and a weight's transpose, plus a bias vector, read once, as the backend's one call."""
    if call("linear", backend) is None:
        return uses
    products = inlined_products(uses)
    for statement in list(uses.statements):
        operands = _linear_operands(statement, products, shapes)
        if operands is not None:
            product = products.pop(operands[0])
            made = Statement(statement.name, "call", operands=operands[1:], shape=statement.shape, op="linear",
                             tensor=statement.tensor, label=statement.label)
            uses.statements[uses.statements.index(statement)] = made
            uses.statements.remove(product)
            uses.rewrite(made, {})
    return uses


def _linear_operands(statement, products: dict, shapes: dict):
    """(the product, x, w, b) when the statement is x @ w.T + b (or its stored value), b a vector; None otherwise."""
    expr = statement.operands[0] if statement.kind == "map" else statement.expr
    if statement.kind not in ("expr", "map") or expr is None or not expr.is_Add or \
            (statement.kind == "map" and any(statement.broadcast_operands)):
        return None
    found = [a for a in expr.args if a in products]
    if len(found) != 1:
        return None
    product, bias = found[0], expr - found[0]
    einsum = products[product]
    form = contraction_form(einsum.tensor.spec)
    if not bias.is_Symbol or len(shapes.get(bias, ())) != 1 or form is None or \
            not all(op.is_Symbol for op in einsum.operands) or any(einsum.broadcast_operands) or \
            shapes.get(product) != shapes.get(statement.symbol):
        return None
    if not ((form[0] == "rows" and form[3]) or (form[0] == "matmul" and not form[5] and not form[3] and form[4])):
        return None
    return product, einsum.operands[form[1]], einsum.operands[form[2]], bias
