"""torch.nn.functional's names for what symprop computes: `import symprop.functional as F`.

    h = F.relu(F.linear(x, w, b))
    loss = F.cross_entropy(logits, t) + 1e-2 * (w ** 2).sum()

Each works on the symbolic tensors of a forward that symprop traces, and on torch tensors (calling
torch's own function), which is how `symprop check` runs the same forward in torch. Each is its op's
(`symprop/ops/<name>.py`): `sorted(F.__all__)` lists them.
"""

from .ops import registry as _registry

globals().update(_registry.functionals())
__all__ = sorted(_registry.functionals())
