"""Lowering a TransformerEncoderLayer: attention, feed-forward, layer norms and residuals,
all from the primitives of `lower` (no derivative here either).

Shapes: x is (N, S, E); each of H heads has width D = E/H and is laid out (N, H, S, D), so
that scores and the weighted sum are batched matrix products.
"""

from __future__ import annotations

import sympy as sp

from .ir import Graph, Value
from .nn import ACTIVATIONS, activate, layer_norm, linear, softmax


def encoder_layer(g: Graph, i: str, layer, x: Value, p: dict[str, Value]) -> Value:
    """`layer` has the options of nn.TransformerEncoderLayer; `p` its parameters by state_dict name; `i` tags
    the names of its values."""
    eps = layer.layer_norm_eps

    def norm(value: Value, k: int) -> Value:
        return layer_norm(g, value, eps, (p[f"norm{k}.weight"], p[f"norm{k}.bias"]), f"n{k}_{i}")

    def block(value: Value, k: int) -> Value:  # the residual branch k: attention (1) or feed-forward (2)
        return attention(g, i, layer, value, p) if k == 1 else feed_forward(g, i, layer, value, p)

    for k in (1, 2):
        if layer.norm_first:
            x = g.named(Value(x.expr + block(norm(x, k), k).expr, x.shape), f"r{k}_{i}")
        else:
            x = norm(g.named(Value(x.expr + block(x, k).expr, x.shape), f"r{k}_{i}"), k)
    return x


def attention(g: Graph, i: str, layer, x: Value, p: dict) -> Value:
    """softmax(q kᵀ/√D + mask) v per head, heads merged, then the output projection."""
    n, s, e = x.shape
    h = layer.nhead
    d = e // h
    # One product for q, k and v, as torch computes it; stored, so that the cotangents of its three slices
    # come back as one concatenation, and the in-projection's gradient is one product too.
    product = g.einsum("nsi,oi->nso", x, p["self_attn.in_proj_weight"], stem=f"mmqkv{i}")
    qkv = g.named(Value(product.expr + p["self_attn.in_proj_bias"].expr, product.shape), f"qkv{i}")
    heads = {}
    for j, part in enumerate("qkv"):
        projected = g.slice(qkv, 2, j * e, (j + 1) * e, stem=f"{part}{i}")
        heads[part] = g.rearrange(projected, (n, s, h, d), (0, 2, 1, 3), (n, h, s, d), stem=f"{part}h{i}")
    scores = g.einsum("nhsd,nhtd->nhst", heads["q"], heads["k"], stem=f"qk{i}")
    logits = scores.expr / sp.sqrt(d)
    if layer.causal:  # -inf above the diagonal: position s attends to positions t <= s
        logits += g.interned(f"mask{i}", (s, s), "constant", spec="causal").expr
    g.cotangent_names[scores.expr] = f"dscores{i}"
    weights = softmax(g, g.label(Value(logits, scores.shape), f"scores{i}"), f"a{i}", suffix=f"_a{i}")
    attended = g.einsum("nhst,nhtd->nhsd", weights, heads["v"], stem=f"av{i}")
    merged = g.rearrange(attended, (n, h, s, d), (0, 2, 1, 3), (n, s, e), stem=f"o{i}")
    return linear(g, merged, p["self_attn.out_proj.weight"], p["self_attn.out_proj.bias"], f"sa{i}")


def feed_forward(g: Graph, i: str, layer, x: Value, p: dict) -> Value:
    hidden = linear(g, x, p["linear1.weight"], p["linear1.bias"], f"f{i}")
    activated = activate(g, hidden, ACTIVATIONS[layer.activation], f"act{i}")
    return linear(g, activated, p["linear2.weight"], p["linear2.bias"], f"ff{i}")
