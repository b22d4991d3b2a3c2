"""Stage 3, derive, once more: second derivatives as products with a direction, forward mode (forward_mode.py) run
over the gradient program that reverse mode (derive.py) made, so that every op's rules serve and no second
derivative is written for any.

- The Hessian-vector product ∇²L·v is the directional derivative of the gradient along v (forward over reverse).
- The Gauss–Newton product Jᵀ H J v: J v is the network output's tangent along v; H, the loss's Hessian in the
  output y, acts on it as the tangent of the loss's gradient in y (the loss read again on y held constant); Jᵀ is
  the gradient of ⟨y, that product held constant⟩.
"""

from __future__ import annotations

from .declare.module import Module
from .declare.tensor import SymbolicTensor
from .declare.trace import GraphTrace, interpret
from .derive import backward, depends_on
from .forward_mode import tangents
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
    """∇²L·v for every parameter tensor, v `along` (a Value per key): the gradient's tangent."""
    keys = list(params)
    moved = tangents(graph, {params[key]: along[key] for key in keys}, [gradients[key] for key in keys])
    return {params[key]: value for key, value in zip(keys, moved, strict=True)}


def reads_beyond(graph: Graph, value: Value, held: Value, params) -> bool:
    """Whether `value` reads a parameter other than through `held` (the output held constant): a loss that reads
    more of the network than its output (a Gaussian head's log σ, returned beside μ)."""
    live = depends_on([t for t in graph.tensors.values() if t.symbol != held.expr], set(params))
    return any(graph.tensor(s) in live for s in graph.tensor_symbols(value.expr))


def gauss_newton_vector(graph: Graph, lowered, model, along: dict) -> dict | None:
    """Jᵀ H J v for every parameter tensor; None where the loss reads parameters (a penalty) or more of the network
    than its output (a forward's second tensor), whose Gauss–Newton matrix is not the loss of the output's alone."""
    params, output = lowered.params, lowered.output
    constant = with_fact("stops_gradient").name  # a value through which no gradient flows
    held = graph.apply(constant, (output,), stem="y")
    trace = GraphTrace(graph, dict(model.net.named_parameters()), dict(model.net.named_modules()),
                       loss=model.loss if isinstance(model.loss, Module) else None)
    with interpret(trace):
        again = model.loss(SymbolicTensor(held), SymbolicTensor(Value(lowered.t.symbol, lowered.t.shape))).value
    if trace.params or reads_beyond(graph, again, held, params.values()):
        return None
    (jv,) = tangents(graph, {params[key]: v for key, v in along.items()}, [output])
    y = graph.tensor(held.expr)
    slope = backward(graph, again, [y])[y]
    (curved,) = tangents(graph, {y: jv}, [slope])
    return backward(graph, inner(graph, output, graph.apply(constant, (curved,), stem="q")), list(params.values()))
