"""Stage 3, derive, once more: second derivatives as products with a direction, each the chain rule (derive.py) run
over values the first derivation made, so that every op's VJP serves twice and no rule is written for them.

- The Hessian-vector product ∇²L·v is the gradient of Σ_k ⟨∂L/∂θ_k, v_k⟩.
- The Gauss–Newton product Jᵀ H J v: J v is ∂/∂u ⟨Jᵀu, v⟩ for a stand-in cotangent u (Jᵀu is linear in it); H,
  the loss's Hessian in the network's output y, acts on it through the loss read again on y held constant; Jᵀ is
  the gradient of ⟨y, that product held constant⟩.
"""

from __future__ import annotations

import sympy as sp

from .declare.module import Module
from .declare.tensor import SymbolicTensor
from .declare.trace import GraphTrace, interpret
from .derive import backward
from .graph import Graph, Value
from .ops.registry import with_fact
from .ops.sum import reduce_sum


def inner(graph: Graph, a: Value, b: Value, stem: str = "ip") -> Value:
    """⟨a, b⟩: the sum of their elementwise product, a number."""
    return reduce_sum(graph, Value(a.expr * b.expr, a.shape), (), stem=stem)


def directions(graph: Graph, params: dict) -> dict:
    """A direction per parameter, v_<its name>: new inputs of its shape."""
    return {key: graph.add(f"v_{tensor.name}", tensor.shape, "input") for key, tensor in params.items()}


def hessian_vector(graph: Graph, gradients: dict, params: dict, along: dict) -> dict:
    """∇²L·v for every parameter tensor, v `along` (a Value per key)."""
    total = sum((inner(graph, gradients[key], v, "gv").expr for key, v in along.items()), sp.Integer(0))
    return backward(graph, Value(total, ()), list(params.values()))


def gauss_newton_vector(graph: Graph, lowered, model, along: dict) -> dict | None:
    """Jᵀ H J v for every parameter tensor; None where the loss reads parameters (a penalty), whose Gauss–Newton
    matrix is not the loss of the output's alone."""
    params, output = lowered.params, lowered.output
    stand_in = graph.add("u", output.shape, "input")
    transposed = backward(graph, inner(graph, output, stand_in), list(params.values()))  # Jᵀu
    total = sum((inner(graph, transposed[t], along[key]).expr for key, t in params.items()), sp.Integer(0))
    u = graph.tensor(stand_in.expr)
    tangent = backward(graph, Value(total, ()), [u])[u]
    constant = with_fact("stops_gradient").name  # a value through which no gradient flows
    held = graph.apply(constant, (output,), stem="y")
    trace = GraphTrace(graph, dict(model.net.named_parameters()), dict(model.net.named_modules()),
                       loss=model.loss if isinstance(model.loss, Module) else None)
    with interpret(trace):
        again = model.loss(SymbolicTensor(held), SymbolicTensor(Value(lowered.t.symbol, lowered.t.shape))).value
    if trace.params:
        return None
    y = graph.tensor(held.expr)
    slope = backward(graph, again, [y])[y]
    curved = backward(graph, inner(graph, slope, tangent), [y])[y]
    return backward(graph, inner(graph, output, graph.apply(constant, (curved,), stem="q")), list(params.values()))
