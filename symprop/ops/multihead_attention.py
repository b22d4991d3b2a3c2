"""Multi-head attention, as torch.nn.MultiheadAttention(batch_first=True) computes it inside torch's transformer layers:
softmax(q kᵀ/√D + masks) v per head, heads merged, then the output projection, built from contractions,
rearrangements and the softmax (no derivative here).

Shapes: x is (N, S, E); each of H heads has width D = E/H and is laid out (N, H, S, D), so that scores and the
weighted sum are batched matrix products.
"""

from __future__ import annotations

import math

import sympy as sp

from ..graph import Graph, Value
from .linear import linear_graph
from .softmax import softmax_graph

_ATTENTION = {"in_proj_weight": ("W", lambda e: (3 * e, e)), "in_proj_bias": ("B", lambda e: (3 * e,)),
              "out_proj.weight": ("Wo", lambda e: (e, e)), "out_proj.bias": ("bo", lambda e: (e,))}


def attention_parameters(prefix: str, suffix: str, e: int) -> dict:
    """state_dict name -> (variable stem, shape, init) of one nn.MultiheadAttention, as torch initializes it."""
    inits = {"in_proj_weight": ("uniform", math.sqrt(6 / (e + 3 * e))),  # Xavier-uniform
             "out_proj.weight": ("uniform", 1 / math.sqrt(e))}
    return {f"{prefix}.{name}": (stem + suffix, shape(e), inits.get(name, "zeros"))
            for name, (stem, shape) in _ATTENTION.items()}


def attention(g: Graph, i: str, layer, x: Value, p: dict, prefix: str = "self_attn", memory: Value | None = None,
              causal: bool = False, padding: Value | None = None) -> Value:
    """softmax(q kᵀ/√D + masks) v per head, heads merged, then the output projection; q from x, k and v from x
    (self-attention) or from `memory`."""
    n, s, e = x.shape
    h = layer.nhead
    d = e // h
    weight, bias = p[f"{prefix}.in_proj_weight"], p[f"{prefix}.in_proj_bias"]

    def split_heads(value: Value, part: str) -> Value:  # (n, s, e) -> (n, h, s, d)
        length = value.shape[1]
        return g.rearrange(value, (n, length, h, d), (0, 2, 1, 3), (n, h, length, d), stem=f"{part}h{i}")

    heads = {}
    if memory is None:
        # One product for q, k and v, as torch computes it; stored, so that the cotangents of its three slices
        # come back as one concatenation, and the in-projection's gradient is one product too.
        product = g.einsum("nsi,oi->nso", x, weight, stem=f"mmqkv{i}")
        qkv = g.named(Value(product.expr + bias.expr, product.shape), f"qkv{i}")
        for j, part in enumerate("qkv"):
            heads[part] = split_heads(g.slice(qkv, 2, j * e, (j + 1) * e, stem=f"{part}{i}"), part)
    else:  # q from x through the first third of the in-projection, k and v from memory through the rest
        projected = {}
        for part, source, (start, stop) in (("q", x, (0, e)), ("kv", memory, (e, 3 * e))):
            w = g.slice(weight, 0, start, stop, stem=f"W{part}{i}")
            b = g.slice(bias, 0, start, stop, stem=f"b{part}{i}")
            product = g.einsum("nsi,oi->nso", source, w, stem=f"mm{part}{i}")
            projected[part] = g.named(Value(product.expr + b.expr, product.shape), f"{part}{i}")
        heads["q"] = split_heads(projected["q"], "q")
        for j, part in enumerate("kv"):
            heads[part] = split_heads(g.slice(projected["kv"], 2, j * e, (j + 1) * e, stem=f"{part}{i}"), part)
    t = heads["k"].shape[2]
    scores = g.einsum("nhsd,nhtd->nhst", heads["q"], heads["k"], stem=f"qk{i}")
    logits = scores.expr / sp.sqrt(d)
    if causal:  # -inf above the diagonal: position s attends to positions t <= s
        logits += g.interned(f"mask{i}", (s, s), "constant", spec="causal").expr
    if padding is not None:  # -inf at the keys that are padding
        logits += g.interned(f"pad{i}", (n, 1, 1, t), "padding", operands=(padding,)).expr
    g.cotangent_names[scores.expr] = f"dscores{i}"
    weights = softmax_graph(g, g.label(Value(logits, scores.shape), f"scores{i}"), f"a{i}", suffix=f"_a{i}")
    attended = g.einsum("nhst,nhtd->nhsd", weights, heads["v"], stem=f"av{i}")
    merged = g.rearrange(attended, (n, h, s, d), (0, 2, 1, 3), (n, s, e), stem=f"o{i}")
    return linear_graph(g, merged, p[f"{prefix}.out_proj.weight"], p[f"{prefix}.out_proj.bias"], f"sa{i}")
