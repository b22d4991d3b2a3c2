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
from ..notes import define
from .causal_mask import causal_mask
from .linear import linear_graph
from .padding_mask import padding_mask
from .softmax import softmax_graph

ATTENTION_SCALE = define("attention's scale", "{0} = q·kᵀ/√{1}: {1} is the width of a head",
                         r"${0} = Q K^{{\top}} / \sqrt{{{1}}}$, ${1}$ the width of a head: the factor "
                         r"$1/\sqrt{{{1}}}$ in the formulas is that scale.")

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
        return g.apply("rearrange", (value,), stem=f"{part}h{i}", shape=(n, h, length, d), split=(n, length, h, d),
                       perm=(0, 2, 1, 3))

    heads = {}
    if memory is None:
        # One product for q, k and v, as torch computes it; stored, so that the cotangents of its three slices
        # come back as one concatenation, and the in-projection's gradient is one product too.
        product = g.apply("einsum", (x, weight), stem=f"mmqkv{i}", spec="nsi,oi->nso")
        qkv = g.named(Value(product.expr + bias.expr, product.shape), f"qkv{i}")
        for j, part in enumerate("qkv"):
            third = g.apply("slice", (qkv,), stem=f"{part}{i}", axes=(2,), bounds=(j * e, (j + 1) * e))
            heads[part] = split_heads(third, part)
    else:  # q from x through the first third of the in-projection, k and v from memory through the rest
        projected = {}
        for part, source, (start, stop) in (("q", x, (0, e)), ("kv", memory, (e, 3 * e))):
            w = g.apply("slice", (weight,), stem=f"W{part}{i}", axes=(0,), bounds=(start, stop))
            b = g.apply("slice", (bias,), stem=f"b{part}{i}", axes=(0,), bounds=(start, stop))
            product = g.apply("einsum", (source, w), stem=f"mm{part}{i}",
                              spec="nsi,oi->nso")
            projected[part] = g.named(Value(product.expr + b.expr, product.shape), f"{part}{i}")
        heads["q"] = split_heads(projected["q"], "q")
        for j, part in enumerate("kv"):
            kv = g.apply("slice", (projected["kv"],), stem=f"{part}{i}", axes=(2,), bounds=(j * e, (j + 1) * e))
            heads[part] = split_heads(kv, part)
    scores = g.apply("einsum", (heads["q"], heads["k"]), stem=f"qk{i}", spec="nhsd,nhtd->nhst")
    logits = scores.expr / sp.sqrt(d)
    g.note(ATTENTION_SCALE, f"scores{i}", str(d))
    if causal:  # -inf above the diagonal: position s attends to positions t <= s
        logits += causal_mask(g, s, stem=f"mask{i}").expr
    if padding is not None:  # -inf at the keys that are padding
        logits += padding_mask(g, padding, stem=f"pad{i}").expr
    g.cotangent_names[scores.expr] = f"dscores{i}"
    weights = softmax_graph(g, g.label(Value(logits, scores.shape), f"scores{i}"), f"a{i}", suffix=f"_a{i}")
    attended = g.apply("einsum", (weights, heads["v"]), stem=f"av{i}", spec="nhst,nhtd->nhsd")
    merged = g.apply("rearrange", (attended,), stem=f"o{i}", shape=(n, s, e), split=(n, h, s, d), perm=(0, 2, 1, 3))
    return linear_graph(g, merged, p[f"{prefix}.out_proj.weight"], p[f"{prefix}.out_proj.bias"], f"sa{i}")
