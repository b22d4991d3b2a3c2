"""Checking generated code against torch.autograd, in float64.

The reference is torch's own: an nn.Sequential of torch.nn modules, torch's loss,
and loss.backward(). Custom expressions are evaluated with torch operations by
walking the SymPy tree (`to_torch`), so autograd, not symprop, differentiates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .declare import model as m
from .functions import sigmoid, softplus


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("checking needs PyTorch: pip install 'symprop[torch]' "
                          "(on CPU-only machines: pip install -c constraints.txt 'symprop[torch]')") from None
    return torch


def to_torch(expr: sp.Expr, env: dict):
    """Evaluate a SymPy expression with torch operations; env maps symbol names to tensors."""
    torch = _torch()
    unary = {sp.exp: torch.exp, sp.log: torch.log, sp.tanh: torch.tanh, sp.erf: torch.erf,
             sp.Abs: torch.abs, sp.sin: torch.sin, sp.cos: torch.cos, sp.tan: torch.tan,
             sp.sinh: torch.sinh, sp.cosh: torch.cosh, sp.atan: torch.atan, sp.asinh: torch.asinh,
             sigmoid: torch.sigmoid, softplus: torch.nn.functional.softplus}

    def as_tensor(value):  # numbers in float64: torch's default float32 would round them
        return value if torch.is_tensor(value) else torch.as_tensor(value, dtype=torch.float64)

    def walk(e):
        if e.is_Symbol:
            return env[e.name]
        if e.is_Number or e in (sp.pi, sp.E):
            return float(e)
        args = [walk(a) for a in e.args]
        if e.is_Add:
            return _fold(lambda a, b: a + b, args)
        if e.is_Mul:
            return _fold(lambda a, b: a * b, args)
        if e.is_Pow:
            base, exponent = args
            return as_tensor(base) ** exponent
        if type(e) in unary:
            return unary[type(e)](as_tensor(args[0]))
        if isinstance(e, (sp.Max, sp.Min)):
            fn = torch.maximum if isinstance(e, sp.Max) else torch.minimum
            tensors = [torch.as_tensor(a, dtype=torch.float64) for a in args]
            return _fold(fn, tensors)
        raise NotImplementedError(f"no torch reference for {type(e).__name__}")

    return walk(expr)


def _fold(fn, items):
    result = items[0]
    for item in items[1:]:
        result = fn(result, item)
    return result


class _Elementwise:
    def __init__(self, expr):
        self.expr = expr

    def __call__(self, z):
        return to_torch(self.expr, {"z": z})


def torch_network(model: m.Model):
    """The torch.nn.Sequential that `model` declares, in float64."""
    torch = _torch()
    nn = torch.nn

    class Lambda(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, z):
            return self.fn(z)

    class Encoder(nn.TransformerEncoderLayer):
        """nn.TransformerEncoderLayer (its own state_dict names), called with a causal mask if asked."""

        def __init__(self, layer: m.TransformerEncoderLayer):
            super().__init__(layer.d_model, layer.nhead, layer.dim_feedforward, dropout=0.0,
                             activation=layer.activation, layer_norm_eps=layer.layer_norm_eps, batch_first=True,
                             norm_first=layer.norm_first)
            self.causal = layer.causal

        def forward(self, src):
            if not self.causal:
                return super().forward(src)
            mask = nn.Transformer.generate_square_subsequent_mask(src.shape[1], dtype=src.dtype)
            return super().forward(src, src_mask=mask, is_causal=True)

    modules = []
    for layer in model.net:
        if isinstance(layer, m.Linear):
            modules.append(nn.Linear(layer.in_features, layer.out_features, bias=layer.bias))
        elif isinstance(layer, m.Elementwise):
            modules.append(Lambda(_Elementwise(layer.expr)))
        elif isinstance(layer, m.LayerNorm):
            modules.append(nn.LayerNorm(layer.normalized_shape, eps=layer.eps,
                                        elementwise_affine=layer.elementwise_affine))
        elif isinstance(layer, m.TransformerEncoderLayer):
            modules.append(Encoder(layer))
        elif isinstance(layer, m.MeanPool):
            modules.append(Lambda(_mean_over_sequence))
        else:
            modules.append({m.Sigmoid: nn.Sigmoid, m.Tanh: nn.Tanh, m.ReLU: nn.ReLU, m.Identity: nn.Identity,
                            m.GELU: nn.GELU, m.LogSoftmax: lambda: nn.LogSoftmax(dim=-1),
                            m.Softmax: lambda: nn.Softmax(dim=-1)}[type(layer)]())
    return nn.Sequential(*modules).double()


def _mean_over_sequence(z):
    return z.mean(dim=1)


def torch_loss(model: m.Model):
    torch = _torch()
    nn, loss = torch.nn, model.loss
    if isinstance(loss, m.ElementwiseLoss):
        reduce = {"mean": torch.mean, "sum": torch.sum}[loss.reduction]
        return lambda y, t: reduce(to_torch(loss.expr, {"y": y, "t": t}))
    cls = {m.MSELoss: nn.MSELoss, m.BCELoss: nn.BCELoss, m.BCEWithLogitsLoss: nn.BCEWithLogitsLoss,
           m.CrossEntropyLoss: nn.CrossEntropyLoss, m.NLLLoss: nn.NLLLoss, m.KLDivLoss: nn.KLDivLoss}[type(loss)]
    return cls(reduction=loss.reduction)


def random_batch(model: m.Model, batch: int, generator):
    """(x, t) as float64 torch tensors (t is int64 for class-index targets)."""
    torch = _torch()
    sequence = (model.sequence,) if model.sequence else ()
    x = torch.randn(batch, *sequence, model.inputs, generator=generator, dtype=torch.float64)
    k, loss = (*(sequence if model.sequence_output else ()), model.outputs), model.loss
    if loss.target == "index":
        t = torch.randint(0, k[-1], (batch,), generator=generator)
    elif isinstance(loss, (m.CrossEntropyLoss, m.KLDivLoss)):
        t = torch.softmax(torch.randn(batch, *k, generator=generator, dtype=torch.float64), dim=-1)
    elif isinstance(loss, (m.BCELoss, m.BCEWithLogitsLoss)):
        t = torch.rand(batch, *k, generator=generator, dtype=torch.float64)
    else:
        t = torch.randn(batch, *k, generator=generator, dtype=torch.float64)
    return x, t


def reference(model: m.Model, params: dict, x, t):
    """torch.autograd's loss and gradients for `params` (a dict of float64 tensors)."""
    net = torch_network(model)
    net.load_state_dict({k: v.clone() for k, v in params.items()})
    value = torch_loss(model)(net(x), t)
    value.backward()
    return value.detach(), {k: p.grad.detach() for k, p in net.named_parameters()}


@dataclass
class Row:
    name: str  # "loss" or a state_dict key
    error: float  # the largest relative error seen
    passed: bool


def relative_error(ours, theirs) -> float:
    torch = _torch()
    ours, theirs = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(theirs, dtype=torch.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    scale = theirs.abs().max().item() if theirs.numel() else 0.0
    diff = (ours - theirs).abs().max().item() if theirs.numel() else 0.0
    return diff / scale if scale > 0 else diff


def compare(model: m.Model, numpy_module=None, torch_module=None, seeds=(0, 1, 2), batches=(1, 7, 32),
            tolerance=1e-10) -> list[Row]:
    """Largest relative error of each generated module against torch.autograd."""
    import numpy as np

    torch = _torch()
    errors: dict[str, float] = {}
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        net = torch_network(model)
        params = {k: torch.randn(v.shape, generator=generator, dtype=torch.float64) * 0.5
                  for k, v in net.state_dict().items()}
        for batch in batches:
            x, t = random_batch(model, batch, generator)
            want_loss, want = reference(model, params, x, t)
            results = []
            if numpy_module is not None:
                loss, grads = numpy_module.loss_and_gradients({k: v.numpy() for k, v in params.items()},
                                                              x.numpy(), t.numpy())
                results.append(("numpy", loss, {k: torch.from_numpy(np.asarray(v)) for k, v in grads.items()}))
            if torch_module is not None:
                loss, grads = torch_module.loss_and_gradients(params, x, t)
                results.append(("torch", loss, grads))
            for backend, loss, grads in results:
                _record(errors, f"loss ({backend})", relative_error(loss, want_loss))
                for key in want:
                    _record(errors, f"{key} ({backend})", relative_error(grads.get(key), want[key])
                            if key in grads else float("inf"))
    return [Row(name, error, error <= tolerance) for name, error in errors.items()]


def _record(errors, name, error):
    if error != error:  # nan
        error = float("inf")
    errors[name] = max(errors.get(name, 0.0), error)
