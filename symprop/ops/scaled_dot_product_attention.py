"""scaled_dot_product_attention: softmax(q kᵀ·scale + mask) v, as F.scaled_dot_product_attention computes it, built
from a batched product, the causal mask, a softmax and a second product (so its derivative is theirs). The mask is
is_causal, or a constant attn_mask that is the causal one; a dropout_p > 0 drops the probabilities where a given mask
says (from_torch's training mode)."""

from __future__ import annotations

import math

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.tensor import SymbolicTensor, constant, shape_text, traced_graph
from ..declare.trace import fail
from ..notes import define
from .causal_mask import causal_mask, causal_size
from .compare import condition
from .einsum import matmul
from .registry import TorchNames, defop
from .softmax import softmax
from .where import where

SCALE = define("attention's scale as a number",
               "attention's scores are q·kᵀ·{0}, {0} = 1/√{1}: {1} is the width of a head",
               r"Attention's scores are $q k^{{\top}} \cdot {0}$, and ${0} = 1/\sqrt{{{1}}}$: ${1}$ is the width of a "
               r"head.")

TORCH = TorchNames(("torch.nn.functional.scaled_dot_product_attention",), (), "",
                   ("aten.scaled_dot_product_attention.default",))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, dropout_mask=None):
    """`dropout_mask` (symprop's, not torch's): with dropout_p > 0, where the attention's probabilities are kept (1) or
    dropped (0); the kept ones are scaled by 1/(1 - dropout_p), as torch's dropout scales them. from_torch passes it,
    an input of the derivation, drawn by the caller."""
    query, key, value, attn_mask, dropout_mask = (resolved(x) for x in (query, key, value, attn_mask, dropout_mask))
    if in_torch(query, key, value) and dropout_mask is not None:
        return _in_torch_given(query, key, value, attn_mask, dropout_p, is_causal, scale, dropout_mask)
    if in_torch(query, key, value):
        return torch_function(TORCH.functions[0])(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                                  is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    where = "F.scaled_dot_product_attention"
    q, k = symbolic(query, where), symbolic(key, where)
    if dropout_p and dropout_mask is None:
        raise fail(f"{where}: dropout_p must be 0.0 (from_torch takes a training-mode dropout's mask as an input), "
                   f"got {dropout_p}")
    if enable_gqa or len(q.shape) < 2 or q.shape[:-2] != k.shape[:-2] or q.shape[-1] != k.shape[-1]:
        raise fail(f"{where}: query {shape_text(q.shape)} and key {shape_text(k.shape)} must agree but on their "
                   "lengths (no grouped-query attention)")
    scores = matmul(query, key.transpose(-2, -1)) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if scale is None:
        traced_graph().note(SCALE, repr(1 / math.sqrt(q.shape[-1])), str(q.shape[-1]))
    length = q.shape[-2]
    if is_causal:
        if length != k.shape[-2]:
            raise fail(f"{where}: is_causal with {length} queries and {k.shape[-2]} keys is not supported")
        scores = scores + SymbolicTensor(causal_mask(traced_graph(), length))
    if attn_mask is not None:
        if isinstance(attn_mask, SymbolicTensor):  # computed by the model (a key padding mask from its ids)
            scores = _computed_mask(scores, attn_mask)
        elif attn_mask.dtype == _bool():  # True where a query may attend: its complement is the one masked
            if causal_size(~attn_mask) is None:
                raise fail(f"{where}: only the causal attn_mask is supported yet")
            scores = scores + SymbolicTensor(causal_mask(traced_graph(), causal_size(~attn_mask)))
        else:
            scores = scores + SymbolicTensor(constant(attn_mask, where))
    probabilities = softmax(scores, -1)
    if dropout_p:
        probabilities = probabilities * dropout_mask * (1 / (1 - dropout_p))
    return matmul(probabilities, value)


def _computed_mask(scores, mask):
    """scores with a mask the model computes: a boolean one (a comparison's 1 where a query may attend) drops the
    rest, an additive one (−inf where a key is padding, 0 elsewhere) is added."""
    if mask.boolean or condition(mask.value.expr) != sp.Ne(mask.value.expr, 0):  # booleans: True where attending
        return where(mask, scores, float("-inf"))
    return scores + mask


def _in_torch_given(query, key, value, attn_mask, dropout_p, is_causal, scale, dropout_mask):
    """The reference in torch, given the dropout's mask: softmax(q kᵀ·scale + mask), dropped where it says, @ v."""
    import torch

    scores = query @ key.transpose(-2, -1) * (1 / math.sqrt(query.shape[-1]) if scale is None else scale)
    if is_causal:
        above = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(above, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    return torch.softmax(scores, -1) * dropout_mask * (1 / (1 - dropout_p)) @ value


def _bool():
    import torch

    return torch.bool


def _dropout_of(args, kwargs) -> tuple:
    """(dropout_p, the shape of its mask: the probabilities', (..., queries, keys)) of a call whose arguments are
    as torch.export traced them: from_torch makes the mask an input where dropout_p > 0."""
    p = kwargs.get("dropout_p", args[4] if len(args) > 4 else 0.0)
    return p, (*args[0].shape[:-1], args[1].shape[-2])


defop("scaled_dot_product_attention", torch=TORCH, functional=scaled_dot_product_attention,
      front={TORCH.aten[0]: scaled_dot_product_attention}, dropout_of=_dropout_of)
