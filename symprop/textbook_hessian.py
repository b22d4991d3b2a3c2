"""The Hessian of a one-layer model in closed form, as a textbook prints it: linear regression's 2XᵀX/N, logistic
regression's Xᵀ diag(σ(z)(1 − σ(z))) X/N, multinomial logistic regression's (diag(p) − ppᵀ)/N per sample.

Nothing here is written for a particular loss. For z = X Wᵀ + b, the loss's Hessian in z acts on a direction ż as
the tangent of δ = ∂L/∂z (forward mode over the gradient program, forward_mode.py). That tangent is linear in ż;
it is read off as a diagonal part and rank-one parts, diag(d) ż + Σ_j u_j (w_jᵀ ż), each w_jᵀ ż a sum over the
classes that the tangent's own program made, so that H_z = diag(d) + Σ_j u_j w_jᵀ for each sample. The parameters'
blocks follow from z's being linear in them: ∇²_W L = Σ_n H_n ⊗ x_n x_nᵀ, ∇²_b L = Σ_n H_n.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .derive import backward
from .forward_mode import tangents
from .ops.registry import fact
from .schedule import relabeller
from .shapes import N


@dataclass(frozen=True)
class OutputHessian:
    """H_z = scale · (diag(diagonal) + Σ u wᵀ) for each sample, over its `classes` outputs; the values are
    expressions over the graph's tensors (p, h), evaluated at that sample."""

    scale: sp.Expr
    diagonal: sp.Expr
    rank_one: tuple[tuple[sp.Expr, sp.Expr], ...]
    classes: int
    weight: str  # the state_dict keys of the layer's W and b ("" where it has none)
    bias: str


def output_hessian(graph, lowered) -> OutputHessian | None:
    """H_z for a network that is one linear layer (then elementwise functions, the loss); None for any other, or
    where the tangent is not of the form above."""
    products = [t for t in graph.tensors.values() if fact(t.op, "product") and t.symbol.name in lowered.network_names]
    if len(products) != 1 or not 1 <= len(lowered.params) <= 2 or len(products[0].shape) != 2:
        return None
    (layer,) = products
    keys = {t.symbol: key for key, t in lowered.params.items()}
    weight = [keys[o.expr] for o in layer.operands if o.expr in keys]
    bias = [key for key, t in lowered.params.items() if key not in weight and t.shape == (layer.shape[1],)]
    if len(weight) != 1 or len(bias) != len(lowered.params) - 1:
        return None
    delta = backward(graph, lowered.loss, [layer])[layer]
    seed = graph.add("z_dot", layer.shape, "input")
    (moved,) = tangents(graph, {layer: seed}, [delta])
    linear, by_seed = _inlined(graph, moved.expr, seed.expr)
    sums = sorted((s for s in linear.free_symbols if s in by_seed and fact(graph.tensors[s].op, "sums")),
                  key=lambda s: s.name)
    parts = sp.collect(sp.expand_mul(linear), [seed.expr, *sums], evaluate=False)
    if set(parts) - {seed.expr, *sums} or any(p.has(seed.expr, *sums) for p in parts.values()):
        return None
    rank_one = []
    for total in sums:
        tensor = graph.tensors[total]
        if total not in parts:
            continue
        if tensor.axes != (1,) or tensor.shape != (layer.shape[0], 1):
            return None  # a sum over the samples couples them: not a Hessian per sample
        inner = sp.collect(sp.expand_mul(_inlined(graph, tensor.operands[0].expr, seed.expr)[0]), [seed.expr],
                           evaluate=False)
        if set(inner) != {seed.expr} or inner[seed.expr].has(seed.expr):
            return None
        rank_one.append((parts[total], inner[seed.expr]))
    relabel = relabeller({sp.Symbol(name, real=True): expr for expr, name in graph.labels.items()})
    diagonal = _shortest(relabel(sp.factor_terms(parts.get(seed.expr, sp.Integer(0)))))
    rank_one = [tuple(relabel(sp.factor_terms(e)) for e in _balanced(graph, u, w)) for u, w in rank_one]
    scale = sp.Integer(1)
    if all(not (e * N).has(N) for e in [diagonal, *(u for u, _ in rank_one)] if e != 0):
        scale = 1 / N  # the mean over the batch: each sample's Hessian is 1/N of its loss's
    return OutputHessian(scale, sp.simplify(diagonal / scale), tuple((sp.simplify(u / scale), w)
                                                                      for u, w in rank_one),
                         layer.shape[1], weight[0], bias[0] if bias else "")


def _inlined(graph, expr: sp.Expr, seed: sp.Symbol) -> tuple[sp.Expr, set]:
    """`expr` with each stored value that the seed moves (a map tensor) written out, down to the seed and the sums;
    and the tensors the seed moves."""
    moved = {seed}
    for tensor in graph.tensors.values():
        if any(o.expr.has(*moved) for o in tensor.operands):
            moved.add(tensor.symbol)
    while True:
        stored = {s: graph.tensors[s].operands[0].expr for s in expr.free_symbols
                  if s in moved and graph.tensors[s].op == "map"}
        if not stored:
            return expr, moved
        expr = expr.xreplace(stored)


def _shortest(expr: sp.Expr) -> sp.Expr:
    """expr, or its factored form where that is shorter (2h(1 − h)(…) for a polynomial in h)."""
    factored = sp.factor(expr)
    return factored if sp.count_ops(factored) < sp.count_ops(expr) else expr


def _balanced(graph, u: sp.Expr, w: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """u wᵀ with the factors that are one number per sample (1/s², s of shape (N, 1)) shared evenly between u and w,
    where they are a square: −(e/s²) eᵀ = −(e/s)(e/s)ᵀ, which the labels then name −p pᵀ."""
    def per_sample(expr):
        return sp.Mul(*(f for f in sp.Mul.make_args(expr) if graph.tensor_symbols(f) and
                        all(graph.tensors[t].shape[-1:] == (1,) for t in graph.tensor_symbols(f))))

    shared = sp.powsimp(per_sample(u) * per_sample(w))
    powers = [f.as_base_exp() for f in sp.Mul.make_args(shared)]
    if any(not (exponent / 2).is_integer for _, exponent in powers):
        return u, w
    root = sp.Mul(*(base ** (exponent / 2) for base, exponent in powers))
    return u / per_sample(u) * root, w / per_sample(w) * root
