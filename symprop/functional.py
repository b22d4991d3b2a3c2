"""torch.nn.functional's names for what symprop computes: `import symprop.functional as F`.

    h = F.relu(F.linear(x, w, b))
    loss = F.cross_entropy(logits, t) + 1e-2 * (w ** 2).sum()

Each works on the symbolic tensors of a forward that symprop traces, and on torch tensors (calling
torch's own function), which is how `symprop check` runs the same forward in torch.
"""

from .declare.functional import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    elementwise_function,
    elementwise_loss,
    embedding,
    gelu,
    kl_div,
    layer_norm,
    linear,
    log_softmax,
    mse_loss,
    nll_loss,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout",
           "elementwise_function", "elementwise_loss", "embedding", "gelu", "kl_div", "layer_norm", "linear",
           "log_softmax", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax", "softplus", "tanh"]
