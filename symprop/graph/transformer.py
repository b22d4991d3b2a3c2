"""Lowering a TransformerEncoderLayer: attention, feed-forward, layer norms and residuals,
all from the primitives of `lower` (no derivative here either).

Shapes: x is (N, S, E); each of H heads has width D = E/H and is laid out (N, H, S, D), so
that scores and the weighted sum are batched matrix products.
"""

from __future__ import annotations

import sympy as sp

from .ir import Graph, Value
from .nn import ACTIVATIONS, activate, layer_norm, linear, softmax


def encoder_layer(g: Graph, i: str, layer, x: Value, p: dict[str, Value], padding: Value | None = None) -> Value:
    """`layer` has the options of nn.TransformerEncoderLayer; `p` its parameters by state_dict name; `i` tags
    the names of its values; `padding` is a key padding mask (True where a position is padding)."""
    blocks = {1: lambda v: attention(g, i, layer, v, p, causal=layer.causal, padding=padding),
              2: lambda v: feed_forward(g, i, layer, v, p)}
    return _residuals(g, i, layer, x, p, blocks)


def decoder_layer(g: Graph, i: str, layer, x: Value, memory: Value, p: dict[str, Value],
                  padding: Value | None = None, memory_padding: Value | None = None) -> Value:
    """nn.TransformerDecoderLayer: causal self-attention (when `layer.causal`), attention over `memory`, and the
    feed-forward block, each in a residual with its layer norm."""
    blocks = {1: lambda v: attention(g, i, layer, v, p, causal=layer.causal, padding=padding),
              2: lambda v: attention(g, i + "x", layer, v, p, "multihead_attn", memory, padding=memory_padding),
              3: lambda v: feed_forward(g, i, layer, v, p)}
    return _residuals(g, i, layer, x, p, blocks)


def _residuals(g: Graph, i: str, layer, x: Value, p: dict, blocks: dict) -> Value:
    """x + block(norm(x)) for each block (norm_first), or norm(x + block(x))."""
    j = f"_{i}" if i[:1].isdigit() else i  # r1_0 in layer 0, r1_enc in net.enc

    def norm(value: Value, k: int) -> Value:
        return layer_norm(g, value, layer.layer_norm_eps, (p[f"norm{k}.weight"], p[f"norm{k}.bias"]), f"n{k}{j}")

    for k, block in blocks.items():
        if layer.norm_first:
            x = g.named(Value(x.expr + block(norm(x, k)).expr, x.shape), f"r{k}{j}")
        else:
            x = norm(g.named(Value(x.expr + block(x).expr, x.shape), f"r{k}{j}"), k)
    return x


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
    weights = softmax(g, g.label(Value(logits, scores.shape), f"scores{i}"), f"a{i}", suffix=f"_a{i}")
    attended = g.einsum("nhst,nhtd->nhsd", weights, heads["v"], stem=f"av{i}")
    merged = g.rearrange(attended, (n, h, s, d), (0, 2, 1, 3), (n, s, e), stem=f"o{i}")
    return linear(g, merged, p[f"{prefix}.out_proj.weight"], p[f"{prefix}.out_proj.bias"], f"sa{i}")


def feed_forward(g: Graph, i: str, layer, x: Value, p: dict) -> Value:
    hidden = linear(g, x, p["linear1.weight"], p["linear1.bias"], f"f{i}")
    activated = activate(g, hidden, ACTIVATIONS[layer.activation], f"act{i}")
    return linear(g, activated, p["linear2.weight"], p["linear2.bias"], f"ff{i}")
