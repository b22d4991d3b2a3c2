"""Checking generated code against torch.autograd, in float64.

The reference is torch's own: the model's forward and loss run on torch tensors, each built-in
layer as its torch.nn module (each op's torch twin) and each
loss as torch's, then loss.backward(). Custom expressions are evaluated with torch operations by
walking the SymPy tree (`to_torch`), so autograd, not symprop, differentiates them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .declare.torch_eval import require_torch, to_torch

__all__ = ["Row", "compare", "random_batch", "random_params", "reference", "reference_ggn_vp", "reference_hvp",
           "relative_error", "to_torch"]


def random_params(model, generator, scale: float = 0.5) -> dict:
    """Every parameter drawn from N(0, scale²), in float64: values that exercise every term."""
    torch = require_torch()
    return {key: torch.randn(shape, generator=generator, dtype=torch.float64) * scale
            for key, shape in model.parameters.items()}


def random_batch(model, batch: int, generator):
    """({name: input}, t) as float64 torch tensors (t is int64 for class-index targets)."""
    torch = require_torch()
    inputs = {}
    for name, shape in model.input_shapes.items():
        size = (batch, *shape[1:])
        if name in model.index_ranges:
            bounds = model.index_ranges[name]  # one, or one for each column of the last axis (None: no table's)
            inputs[name] = torch.randint(0, bounds, size, generator=generator) if not isinstance(bounds, list) else \
                torch.stack([torch.randint(0, b or 10, size[:-1], generator=generator) for b in bounds], -1)
        elif name in model.mask_inputs:  # padding at the end of each row, which keeps at least one position (and
            # a mask of another meaning, True where a key is kept, at least one False and one True where it can)
            longest = size[-1] + 1 if name in model.padding_inputs else max(size[-1], 2)
            lengths = torch.randint(1, longest, (*size[:-1], 1), generator=generator)
            inputs[name] = torch.arange(size[-1]) >= lengths
        else:
            inputs[name] = torch.randn(size, generator=generator, dtype=torch.float64)
    shape, kind = (batch, *model.target_shape[1:]), model.target_kind
    domain = getattr(model.loss, "target_domain", "real")  # what the loss's targets hold
    if kind == "index":
        t = torch.randint(0, model.outputs, shape, generator=generator)
    elif kind == "probs" or domain == "simplex" or getattr(model, "simplex_axis", None) is not None:
        axis = -1 if getattr(model, "simplex_axis", None) is None else model.simplex_axis
        t = torch.randn(shape, generator=generator, dtype=torch.float64).exp()
        t /= t.sum(axis, keepdim=True)  # rows of probabilities
    elif domain == "unit":
        t = torch.rand(shape, generator=generator, dtype=torch.float64)
    else:
        t = torch.randn(shape, generator=generator, dtype=torch.float64)
    return inputs, t


def _torch_run(model, tensors: dict):
    """The model run in torch, each parameter bound to tensors[its state_dict key]."""
    from .declare.trace import TorchRun

    return TorchRun(dict(model.net.named_parameters()), tensors, dict(model.net.named_modules()))


def reference(model, params: dict, inputs: dict, t, running: dict | None = None):
    """torch.autograd's loss and gradients for `params` (a dict of float64 tensors): the model's forward and
    loss run in torch, built-in layers as their torch.nn modules, then loss.backward(). `running`, if given,
    receives each BatchNorm's running statistics in training mode, {state_dict key: (before, after)}."""
    from .declare.trace import interpret

    leaves = {key: value.detach().clone().requires_grad_(True) for key, value in params.items()}
    run = _torch_run(model, leaves)
    with interpret(run):
        value = model.loss(model.net(*inputs.values()), t)
    value.backward()
    if running is not None:
        running.update({key: (before.to(getattr(twin, name).dtype), getattr(twin, name).detach().clone())
                        for key, (before, twin, name) in run.running.items()})  # before: in the run's dtype
    return value.detach(), {key: leaf.grad if leaf.grad is not None else leaf.detach() * 0
                            for key, leaf in leaves.items()}


def reference_hvp(model, params: dict, inputs: dict, t, v: dict) -> dict:
    """torch's own Hessian-vector product for `params` and directions `v` (dicts of float64 tensors): the model's
    forward and loss run in torch, double-differentiated by torch.autograd.functional.hvp (attention through torch's
    math kernel: its fused one has no double backward)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from .declare.trace import interpret

    torch = require_torch()
    keys = list(params)

    def loss(*values):
        with interpret(_torch_run(model, dict(zip(keys, values, strict=True)))):
            return model.loss(model.net(*inputs.values()), t)

    with sdpa_kernel(SDPBackend.MATH):
        _, products = torch.autograd.functional.hvp(loss, tuple(params.values()), tuple(v[k] for k in keys))
    return dict(zip(keys, products, strict=True))


def reference_ggn_vp(model, params: dict, inputs: dict, t, v: dict) -> dict:
    """Jᵀ H J v built by torch: J v, the network output's Jacobian-vector product (torch.autograd.functional.jvp),
    H (the loss's Hessian in that output) times it (hvp), and Jᵀ of that (vjp)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from .declare.trace import interpret

    torch = require_torch()
    keys = list(params)

    def output(*values):
        with interpret(_torch_run(model, dict(zip(keys, values, strict=True)))):
            return model.net(*inputs.values())

    def loss(y):
        with interpret(_torch_run(model, params)):
            return model.loss(y, t)

    with sdpa_kernel(SDPBackend.MATH):  # torch.autograd's transforms: torch.func's refuse the layers' dtype casts
        y, tangent = torch.autograd.functional.jvp(output, tuple(params.values()), tuple(v[k] for k in keys))
        curved = torch.autograd.functional.hvp(loss, y.detach(), tangent)[1]
        products = torch.autograd.functional.vjp(output, tuple(params.values()), curved)[1]
        return dict(zip(keys, products, strict=True))


@dataclass
class Row:
    name: str  # "loss" or a state_dict key
    error: float  # the largest relative error seen
    passed: bool


def relative_error(ours, theirs, floor: float = 0.0) -> float:
    """The largest difference relative to the largest entry of `theirs`, or to `floor` where that is larger: the
    scale below which a gradient is rounding noise (one that is 0 in exact arithmetic, a bias before a batch norm,
    comes out as noise in both computations)."""
    torch = require_torch()
    ours, theirs = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(theirs, dtype=torch.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    scale = max(theirs.abs().max().item() if theirs.numel() else 0.0, floor)
    diff = (ours - theirs).abs().max().item() if theirs.numel() else 0.0
    return diff / scale if scale > 0 else diff


def compare(model, modules: dict, seeds=(0, 1, 2), batches=(1, 7, 32), tolerance=1e-10) -> list[Row]:
    """Largest relative error of each generated module ({backend name: module}) against torch.autograd."""
    import numpy as np

    torch = require_torch()
    errors: dict[str, float] = {}
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        params = random_params(model, generator)
        for batch in batches:
            inputs, t = random_batch(model, batch, generator)
            running = {}
            try:
                want_loss, want = reference(model, params, inputs, t, running)
            except ValueError as error:  # torch's batch norm refuses to train on one value per channel
                if "more than 1 value per channel" in str(error):
                    continue
                raise
            # the rounding noise of float64 sums at the loss's and the inputs' scale, over the tolerance: a gradient
            # that is 0 in exact arithmetic (a bias before a batch norm) comes out as noise in both computations,
            # which need agree only to that noise
            largest = max([1.0] + [v.abs().max().item() for v in inputs.values() if v.is_floating_point()])
            floor = 64 * torch.finfo(torch.float64).eps * max(abs(float(want_loss)), 1.0) * largest / tolerance
            for backend, module in modules.items():
                # the running statistics as the torch layers held them, if the module updates them
                tracked = {"buffers": {k: v.numpy() if backend == "numpy" else v.clone()
                                       for k, (v, _) in running.items()}} if running else {}
                if backend == "numpy":
                    loss, grads = module.loss_and_gradients({k: v.numpy() for k, v in params.items()},
                                                            *(v.numpy() for v in inputs.values()), t.numpy(), **tracked)
                    grads = {k: torch.from_numpy(np.asarray(v)) for k, v in grads.items()}
                else:
                    loss, grads = module.loss_and_gradients(params, *inputs.values(), t, **tracked)
                _record(errors, f"loss ({backend})", relative_error(loss, want_loss))
                for key in want:
                    _record(errors, f"{key} ({backend})", relative_error(grads.get(key), want[key], floor)
                            if key in grads else float("inf"))
                for key, (_, after) in running.items():
                    if after.is_floating_point() and not after.isfinite().all():
                        continue  # one value per channel: torch's layer refuses it; its ATen op (export's) makes NaN
                    _record(errors, f"{key} ({backend})", relative_error(tracked["buffers"].get(key), after)
                            if key in tracked["buffers"] else float("inf"))
            if any(hasattr(module, "hvp") for module in modules.values()):  # derived with --hvp
                _compare_hvp(model, modules, params, inputs, t, generator, errors)
    return [Row(name, error, error <= tolerance) for name, error in errors.items()]


def _compare_hvp(model, modules: dict, params: dict, inputs: dict, t, generator, errors: dict) -> None:
    """Each module's hvp against torch's, for a direction drawn from `generator`."""
    import numpy as np

    torch = require_torch()
    v = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in params.items()}
    wanted = {"hvp": reference_hvp(model, params, inputs, t, v)}
    if any(hasattr(module, "ggn_vp") for module in modules.values()):
        wanted["ggn_vp"] = reference_ggn_vp(model, params, inputs, t, v)
    for backend, module in modules.items():
        for product, want in wanted.items():
            if not hasattr(module, product):
                continue
            if backend == "numpy":
                _, got = getattr(module, product)({k: p.numpy() for k, p in params.items()},
                                                  *(x.numpy() for x in inputs.values()), t.numpy(),
                                                  {k: d.numpy() for k, d in v.items()})
            else:
                _, got = getattr(module, product)(params, *inputs.values(), t, v)
            for key, value in want.items():  # relative to 1 at least: a product 0 in exact arithmetic is noise
                _record(errors, f"{product} {key} ({backend})", relative_error(np.asarray(got[key]), value, 1.0))


def _record(errors, name, error):
    if error != error:  # nan
        error = float("inf")
    errors[name] = max(errors.get(name, 0.0), error)
