"""The per-op benchmark: every op of the registry, forward plus backward, in the generated NumPy and torch modules
against torch.autograd, float32, at an overhead-bound size (~10³ entries) and a memory-bound one (~10⁶).

Each row is a small torch model written as torch code writes it: a learned shift `a` (so that the op's input
gradient is computed, as it is inside a network), then the op, then a loss. The loss is L = Σ y·t, a fixed random
cotangent t (what an op sees in the middle of a network), except in the rows of losses, whose loss is the op itself.
symprop reads each row with from_torch (torch.export), derives it once, and writes its NumPy and torch modules;
autograd runs the same torch model (loss, then backward(), then the .grad tensors are read).

Sizes: every row's op reads a per-sample array of about 512 entries (a vector of 512; a sequence of 8 x 64; an image
of 2 x 16 x 16; a signal of 4 x 128); the batch is 2 (~10³ entries) or 2048 (~10⁶). The derived code does not depend
on the batch, so one derivation serves both.

Ops that torch code never calls by themselves (a convolution's windows and their fold, an embedding's gather and
scatter-add, the one-hot of a cross-entropy, ...) are timed inside the row of the op that makes them: the table
names that row (`COVERED_BY`).

Method: each variant (numpy, torch, autograd, and autograd on one thread: NumPy's elementwise passes use one core,
where torch's kernels use all) runs in its own fresh process, on every row and both sizes; a round runs each once,
their order rotated round by round; a row's time is the median over rounds of each round's
median call (warm-up 2 calls, then at least 5 calls and at least --min-time seconds). The first round also saves each
variant's loss and gradients at the small size, and every variant must agree with autograd (relative 1e-4, float32).

Run (from the project root):
  .venv/bin/python benchmarks/ops.py                  # ~15 min on 2 cores; writes benchmarks/results/ops.json
                                                      # and ops.md (the table, with the causes of slow rows)
  .venv/bin/python benchmarks/ops.py --rows gelu,conv2d --rounds 1
  .venv/bin/python benchmarks/ops.py --quick          # CI: every row derives, runs and agrees; times mean nothing
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from run import import_path, raise_heap_threshold, time_calls

HERE = Path(__file__).resolve()
DEFAULT_JSON = HERE.parent / "results" / "ops.json"
VARIANTS = ("numpy", "torch", "autograd", "autograd-1thread")
SAMPLES = {"vector": (512,), "sequence": (8, 64), "image": (2, 16, 16), "signal": (4, 128)}
SIZES = {"1e3": 2, "1e6": 2048}  # the batch of each size
TOLERANCE = 1e-4
SLOWEST = 1.3  # the bound: no op slower than this times autograd, or the table says why


@dataclass
class Row:
    """One row: `body(nn)` makes the op as a module or a function of h; `loss(nn)` a torch loss (None: Σ y·t)."""

    ops: tuple[str, ...]  # the registry ops it times
    sample: str = "vector"
    body: object = None
    loss: object = None
    x: str = "normal"  # normal | positive | unit (in (-1, 1)) | index (ids in [0, 100))
    t: str = "like"  # like (the output's shape) | class (indices) | probs (rows of probabilities)
    extra: tuple = ()  # further inputs: "padding" (a key padding mask of the sequence)


def _f(name):  # torch.nn.functional.<name>
    return lambda nn: getattr(nn.functional, name)


def _torch(path):  # torch.<path>
    def make(nn):
        import torch

        target = torch
        for part in path.split("."):
            target = getattr(target, part)
        return target
    return make


def _rows() -> dict[str, Row]:
    rows = {}
    # elementwise: the op's torch function on x + a
    for name, fn, x in [("sigmoid", _torch("sigmoid"), "normal"), ("tanh", _torch("tanh"), "normal"),
                        ("relu", _torch("relu"), "normal"), ("gelu", _f("gelu"), "normal"),
                        ("softplus", _f("softplus"), "normal"), ("silu", _f("silu"), "normal"),
                        ("elu", _f("elu"), "normal"), ("leaky_relu", _f("leaky_relu"), "normal"),
                        ("hardswish", _f("hardswish"), "normal"), ("hardsigmoid", _f("hardsigmoid"), "normal"),
                        ("hardtanh", _f("hardtanh"), "normal"), ("relu6", _f("relu6"), "normal"),
                        ("exp", _torch("exp"), "normal"), ("log", _torch("log"), "positive"),
                        ("sqrt", _torch("sqrt"), "positive"), ("abs", _torch("abs"), "normal"),
                        ("sin", _torch("sin"), "normal"), ("cos", _torch("cos"), "normal"),
                        ("tan", _torch("tan"), "unit"), ("atan", _torch("atan"), "normal"),
                        ("sinh", _torch("sinh"), "normal"), ("cosh", _torch("cosh"), "normal"),
                        ("asinh", _torch("asinh"), "normal"), ("erf", _torch("erf"), "normal"),
                        ("sign", _torch("sign"), "normal"), ("log1p", _torch("log1p"), "positive"),
                        ("expm1", _torch("expm1"), "normal"), ("exp2", _torch("exp2"), "normal")]:
        rows[name] = Row((name,), body=fn, x=x)
    rows["identity"] = Row(("identity",), body=lambda nn: nn.Identity())
    rows["clamp"] = Row(("clamp",), body=lambda nn: lambda h: h.clamp(-1.0, 1.0))
    rows["clamp_min"] = Row(("clamp_min",), body=lambda nn: lambda h: h.clamp_min(0.0))
    rows["clamp_max"] = Row(("clamp_max",), body=lambda nn: lambda h: h.clamp_max(0.0))
    rows["maximum"] = Row(("maximum",), body=lambda nn: lambda h: _two(h, "maximum"))
    rows["minimum"] = Row(("minimum",), body=lambda nn: lambda h: _two(h, "minimum"))
    rows["xlogy"] = Row(("xlogy",), body=lambda nn: lambda h: _two(h, "xlogy"), x="positive")
    # a function of several elementwise ops (Mish), fused into one expression
    rows["mish"] = Row(("map",), body=lambda nn: lambda h: h * nn.functional.softplus(h).tanh())
    # reductions and rearrangements, along the last axis of a sequence
    seq = "sequence"
    rows["sum"] = Row(("sum",), seq, lambda nn: lambda h: h.sum(-1))
    rows["mean"] = Row(("sum",), seq, lambda nn: lambda h: h.mean(1))
    rows["amax"] = Row(("max",), seq, lambda nn: lambda h: h.amax(-1))
    rows["var"] = Row(("var",), seq, lambda nn: lambda h: h.var(-1))
    rows["std"] = Row(("std",), seq, lambda nn: lambda h: h.std(-1))
    rows["vector_norm"] = Row(("vector_norm",), seq, lambda nn: lambda h: _torch("linalg.vector_norm")(nn)(h, dim=-1))
    rows["logsumexp"] = Row(("logsumexp",), seq, lambda nn: lambda h: h.logsumexp(-1))
    rows["softmax"] = Row(("softmax",), seq, lambda nn: lambda h: h.softmax(-1))
    rows["log_softmax"] = Row(("log_softmax",), seq, lambda nn: lambda h: h.log_softmax(-1))
    rows["slice"] = Row(("slice",), seq, lambda nn: lambda h: h[..., :32])
    rows["pad"] = Row(("pad",), seq, lambda nn: lambda h: nn.functional.pad(h, (1, 1)))
    rows["concat"] = Row(("concat",), seq, lambda nn: lambda h: _cat(h))
    rows["flip"] = Row(("flip",), seq, lambda nn: lambda h: h.flip(-1))
    rows["diagonal"] = Row(("diagonal", "einsum"), seq, lambda nn: lambda h: (h @ h.transpose(-2, -1)).diagonal(
        dim1=-2, dim2=-1))
    rows["transpose"] = Row(("rearrange",), seq, lambda nn: lambda h: h.transpose(1, 2).flatten(1))
    rows["detach"] = Row(("detach",), seq, lambda nn: lambda h: h * h.detach())
    rows["where"] = Row(("where", "compare"), seq, lambda nn: lambda h: _where(h))
    rows["compare"] = Row(("compare",), seq, lambda nn: lambda h: h * (h > 0.1))
    rows["masked_fill"] = Row(("masked_fill", "constant"), seq, lambda nn: _own("Masked"))
    rows["causal-scores"] = Row(("einsum", "masked_fill", "minus_infinity", "softmax"), seq, lambda nn: _own("Causal"))
    rows["constant"] = Row(("constant",), seq, lambda nn: _own("Scaled"))
    rows["matmul"] = Row(("einsum",), seq, lambda nn: lambda h: h @ h.transpose(-2, -1))
    rows["linear"] = Row(("linear", "einsum"), seq, lambda nn: nn.Linear(64, 64))
    rows["layer_norm"] = Row(("layer_norm",), seq, lambda nn: nn.LayerNorm(64))
    rows["dropout"] = Row(("dropout",), seq, lambda nn: nn.Dropout(0.1).eval())
    rows["sdpa"] = Row(("scaled_dot_product_attention",), seq,
                       lambda nn: lambda h: nn.functional.scaled_dot_product_attention(h, h, h))
    rows["sdpa-causal"] = Row(("scaled_dot_product_attention", "causal_mask"), seq,
                              lambda nn: lambda h: nn.functional.scaled_dot_product_attention(h, h, h, is_causal=True))
    rows["encoder"] = Row(("transformer_encoder",), seq, lambda nn: _encoder(nn))
    rows["encoder-padding"] = Row(("transformer_encoder", "padding_mask"), seq, lambda nn: _own("Padded"),
                                  extra=("padding",))
    rows["encoder-stack"] = Row(("transformer_encoder_stack",), seq, lambda nn: nn.TransformerEncoder(_encoder(nn), 2))
    rows["decoder"] = Row(("transformer_decoder",), seq, lambda nn: _own("Decoding", _decoder(nn)))
    rows["decoder-stack"] = Row(("transformer_decoder_stack",), seq,
                                lambda nn: _own("Decoding", nn.TransformerDecoder(_decoder(nn), 2)))
    rows["transformer"] = Row(("transformer",), seq, lambda nn: _own("Decoding", nn.Transformer(
        64, 4, 1, 1, 128, dropout=0.0, batch_first=True)))
    rows["learned-positions"] = Row((), seq, lambda nn: _own("Positions"))
    rows["embedding"] = Row(("embedding", "gather", "scatter_add"), "vector", lambda nn: nn.Embedding(100, 8),
                            x="index")
    # images and signals
    img, sig = "image", "signal"
    rows["conv2d"] = Row(("conv2d", "windows", "fold"), img, lambda nn: nn.Conv2d(2, 4, 3, padding=1))
    rows["conv1d"] = Row(("conv1d", "windows", "fold"), sig, lambda nn: nn.Conv1d(4, 4, 3, padding=1))
    rows["max_pool2d"] = Row(("max_pool2d", "argmax"), img, lambda nn: lambda h: nn.functional.max_pool2d(h, 2))
    rows["max_pool1d"] = Row(("max_pool1d", "argmax"), sig, lambda nn: lambda h: nn.functional.max_pool1d(h, 2))
    rows["avg_pool2d"] = Row(("avg_pool2d",), img, lambda nn: lambda h: nn.functional.avg_pool2d(h, 2))
    rows["avg_pool1d"] = Row(("avg_pool1d",), sig, lambda nn: lambda h: nn.functional.avg_pool1d(h, 2))
    rows["adaptive_avg_pool2d"] = Row(("adaptive_avg_pool2d",), img, lambda nn: nn.AdaptiveAvgPool2d(4))
    rows["adaptive_avg_pool1d"] = Row(("adaptive_avg_pool1d",), sig, lambda nn: nn.AdaptiveAvgPool1d(8))
    rows["adaptive_max_pool2d"] = Row(("adaptive_max_pool2d",), img, lambda nn: nn.AdaptiveMaxPool2d(4))
    rows["adaptive_max_pool1d"] = Row(("adaptive_max_pool1d",), sig, lambda nn: nn.AdaptiveMaxPool1d(8))
    rows["batch_norm2d"] = Row(("batch_norm2d", "batch_norm"), img, lambda nn: nn.BatchNorm2d(2))
    rows["batch_norm2d-eval"] = Row(("batch_norm2d",), img, lambda nn: nn.BatchNorm2d(2).eval())
    rows["batch_norm1d"] = Row(("batch_norm1d", "batch_norm"), sig, lambda nn: nn.BatchNorm1d(4))
    rows["group_norm"] = Row(("group_norm",), img, lambda nn: nn.GroupNorm(2, 2))
    # losses, on x + a (class scores: 512 classes a sample)
    for name, loss, t in [("mse_loss", "MSELoss", "like"), ("l1_loss", "L1Loss", "like"),
                          ("smooth_l1_loss", "SmoothL1Loss", "like"), ("huber_loss", "HuberLoss", "like"),
                          ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", "unit"),
                          ("cross_entropy", "CrossEntropyLoss", "class")]:
        rows[name] = Row((name,) + (("onehot",) if t == "class" else ()), loss=_named_loss(loss), t=t)
    rows["binary_cross_entropy"] = Row(("binary_cross_entropy",), body=lambda nn: nn.Sigmoid(),
                                       loss=_named_loss("BCELoss"), t="unit")
    rows["nll_loss"] = Row(("nll_loss",), body=lambda nn: nn.LogSoftmax(-1), loss=_named_loss("NLLLoss"), t="class")
    rows["kl_div"] = Row(("kl_div",), body=lambda nn: nn.LogSoftmax(-1),
                         loss=lambda nn: nn.KLDivLoss(reduction="batchmean"), t="probs")
    rows["picked"] = Row(("take_rows",), body=lambda nn: nn.Softmax(-1), loss=lambda nn: _picked, t="class")
    rows["mse-softplus"] = Row((), loss=lambda nn: _mse_softplus)
    return rows


def _named_loss(name):
    return lambda nn: getattr(nn, name)()


def _two(h, name):
    import torch

    return getattr(torch, name)(h, 0.5 * h + 0.25)


def _cat(h):
    import torch

    return torch.cat([h, h * h], dim=-1)


def _where(h):
    import torch

    return torch.where(h > 0, h, 0.1 * h)


def _picked(p, t):  # makemore's loss: -probs[torch.arange(n), ys].log().mean()
    import torch

    return -p[torch.arange(t.shape[0]), t].log().mean()


def _mse_softplus(y, t):  # a loss of the user's own, elementwise
    import torch

    return ((y - t) ** 2 * torch.nn.functional.softplus(y)).mean()


def _encoder(nn):
    return nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)


def _decoder(nn):
    return nn.TransformerDecoderLayer(64, 4, 128, dropout=0.0, batch_first=True)


@functools.cache
def _classes() -> dict:
    """The rows' own modules (made when a row is built: the NumPy worker never imports torch)."""
    import torch
    from torch import nn

    class Masked(nn.Module):  # a mask the model holds: every third feature set to 0
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.arange(64) % 3 == 1)

        def forward(self, h):
            return h.masked_fill(self.mask, 0.0)

    class Causal(nn.Module):  # attention scores as GPTs mask them: -inf above the diagonal, then a softmax
        def __init__(self):
            super().__init__()
            self.register_buffer("above", torch.ones(8, 8, dtype=torch.bool).triu(1))

        def forward(self, h):
            scores = (h @ h.transpose(-2, -1)) * 0.125
            return scores.masked_fill(self.above, float("-inf")).softmax(-1)

    class Scaled(nn.Module):  # a constant the model holds (a buffer)
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.linspace(0.5, 2.0, 64))

        def forward(self, h):
            return h * self.scale

    class Positions(nn.Module):  # learned positions, as GPTs add them
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.randn(8, 64) * 0.02)

        def forward(self, h):
            return h + self.pos

    class Padded(nn.Module):  # an encoder layer told which keys are padding
        def __init__(self):
            super().__init__()
            self.layer = _encoder(nn)

        def forward(self, h, padding):
            return self.layer(h, src_key_padding_mask=padding)

    class Decoding(nn.Module):  # a decoder reading the input itself as its memory
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, h):
            return self.layer(h, h)

    class Net(nn.Module):
        """A row's model: h = x + a (no shift for token ids), then the op."""

        def __init__(self, row: Row):
            super().__init__()
            if row.x != "index":
                self.a = nn.Parameter(torch.randn(SAMPLES[row.sample]) * 0.1)
            body = row.body(nn) if row.body is not None else nn.Identity()
            self.body = body if isinstance(body, nn.Module) else None
            self.fn = None if self.body is not None else body

        def forward(self, x, *extra):
            h = x + self.a if hasattr(self, "a") else x
            return self.body(h, *extra) if self.body is not None else self.fn(h)

    return {"Masked": Masked, "Causal": Causal, "Scaled": Scaled, "Positions": Positions, "Padded": Padded,
            "Decoding": Decoding, "Net": Net}


def _own(name: str, *args):
    return _classes()[name](*args)


# Ops that no row's torch code calls by name, and the row that times them: what torch code writes for the same thing
COVERED_BY = {
    "argmax": ("max_pool2d", "max pooling's routing to the arg-max"),
    "windows": ("conv2d", "a convolution's sliding windows"), "fold": ("conv2d", "the adjoint of the windows"),
    "gather": ("embedding", "an embedding's lookup"), "scatter_add": ("embedding", "its adjoint"),
    "onehot": ("cross_entropy", "class indices as one-hot rows"), "map": ("mish", "any fused elementwise expression"),
    "causal_mask": ("sdpa-causal", "is_causal=True"), "minus_infinity": ("causal-scores", "masked_fill(mask, -inf)"),
    "padding_mask": ("encoder-padding", "src_key_padding_mask"),
    "take_rows": ("picked", "probs[torch.arange(n), t]"),
    "mean_pool": ("mean", "S.MeanPool is h.mean(1)"), "Max": ("relu", "relu is Max(z, 0)"),
    "Min": ("hardtanh", "hardtanh is Min(Max(z, -1), 1)"),
    "elementwise": ("mish", "S.Elementwise(expr): torch writes the expression's ops"),
    "elementwise_loss": ("mse-softplus", "S.ElementwiseLoss(expr): torch writes the expression's ops"),
    "positions": ("learned-positions", "S.PositionalEncoding: torch adds a learned table"),
    "sinusoid": ("learned-positions", "S.PositionalEncoding(learned=False): a fixed table, added the same way"),
}


def covered(rows: dict[str, Row]) -> dict[str, str]:
    """op -> the row that times it, for every op of the registry (KeyError: an op no row times)."""
    from symprop.ops.registry import OPS

    timed = {op: name for name, row in reversed(rows.items()) for op in row.ops}
    return {op: timed[op] if op in timed else COVERED_BY[op][0] for op in OPS}


# -- the parent: derive each row once, and write its modules and data --------------------------------------------
def _example(row: Row, batch: int, seed: int = 0) -> list[np.ndarray]:
    """The row's inputs at this batch, from NumPy's generator (every process draws the same)."""
    rng = np.random.default_rng(seed)
    shape = (batch, *SAMPLES[row.sample]) if row.x != "index" else (batch, 8)
    x = {"normal": lambda: rng.standard_normal(shape), "positive": lambda: rng.uniform(1.0, 2.0, shape),
         "unit": lambda: rng.uniform(-0.9, 0.9, shape), "index": lambda: rng.integers(0, 100, shape)}[row.x]()
    arrays = [x.astype(np.float32) if row.x != "index" else x]
    for kind in row.extra:  # a key padding mask: True at the end of each row, at least one key kept
        assert kind == "padding"
        lengths = rng.integers(1, 9, (batch, 1))
        arrays.append(np.arange(8) >= lengths)
    return arrays


def _target(row: Row, out_shape: tuple, batch: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (batch, *out_shape)
    if row.t == "class":
        return rng.integers(0, out_shape[-1], (batch,))
    if row.t == "probs":
        e = np.exp(rng.standard_normal(shape))
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)
    if row.t == "unit":
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def torch_row(name: str, row: Row):
    """(the row's torch module, seeded, float32; its loss function of (y, t))."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = _own("Net", row)
    loss = row.loss(nn) if row.loss is not None else (lambda y, t: (y * t).sum())
    return net, loss


def derive_rows(rows: dict[str, Row], folder: Path) -> dict:
    """Each row's NumPy and torch modules, written to folder, and its manifest: the output's shape, the state."""
    import torch

    import symprop as S

    manifest = {}
    for k, (name, row) in enumerate(rows.items()):
        print(f"  deriving {k + 1}/{len(rows)}: {name}", file=sys.stderr, flush=True)
        net, loss = torch_row(name, row)
        inputs = tuple(torch.from_numpy(a) for a in _example(row, 2))
        with torch.no_grad():
            out_shape = tuple(net(*inputs).shape[1:])
        t = torch.from_numpy(_target(row, out_shape, 2))
        model = S.from_torch(net, loss, example_inputs=inputs, example_target=t, name=f"op_{name.replace('-', '_')}")
        derivation = S.derive_network(model)
        for backend in ("numpy", "torch"):
            (folder / f"{name}_{backend}.py").write_text(derivation.render(backend))
        np.savez(folder / f"{name}_state.npz", **{k: v.detach().numpy() for k, v in net.state_dict().items()})
        manifest[name] = {"out_shape": out_shape}
    return manifest


# -- the workers: one variant on every row and size ---------------------------------------------------------------
def _call(variant: str, name: str, row: Row, batch: int, folder: Path, out_shape):
    """A call() -> (loss, {key: gradient}) of a variant on a row at a batch."""
    arrays = _example(row, batch)
    t = _target(row, out_shape, batch)
    state = dict(np.load(folder / f"{name}_state.npz"))
    if variant == "numpy":
        mod = import_path(folder / f"{name}_numpy.py")
        params = {k: state[k] for k in mod.PARAM_SHAPES}
        return lambda: mod.loss_and_gradients(params, *arrays, t)
    import torch

    tensors = [torch.from_numpy(a) for a in arrays]
    tt = torch.from_numpy(t)
    if variant == "torch":
        mod = import_path(folder / f"{name}_torch.py")
        params = {k: torch.from_numpy(state[k]) for k in mod.PARAM_SHAPES}
        return lambda: mod.loss_and_gradients(params, *tensors, tt)
    torch.set_num_threads(1 if variant == "autograd-1thread" else torch.get_num_threads())
    net, loss_fn = torch_row(name, row)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    named = dict(net.named_parameters())

    def call():
        for p in named.values():
            p.grad = None
        loss = loss_fn(net(*tensors), tt)
        loss.backward()
        return loss, {k: p.grad for k, p in named.items()}

    return call


def _as_arrays(out) -> dict[str, np.ndarray]:
    loss, grads = out
    arrays = {"loss": np.asarray(loss.detach() if hasattr(loss, "detach") else loss, dtype=np.float64)}
    arrays.update({f"grad:{k}": np.asarray(v.detach() if hasattr(v, "detach") else v) for k, v in grads.items()})
    return arrays


def worker(spec: dict) -> dict:
    raise_heap_threshold()
    rows, folder, results = _rows(), Path(spec["folder"]), {}
    for name in spec["rows"]:
        for size in spec["sizes"]:
            try:
                out_shape = spec["manifest"][name]["out_shape"]
                call = _call(spec["variant"], name, rows[name], SIZES[size], folder, out_shape)
                if spec["outputs"] and size == min(spec["sizes"], key=SIZES.get):
                    np.savez(Path(spec["outputs"]) / f"{name}__{spec['variant']}.npz", **_as_arrays(call()))
                gc.collect()
                times, _ = time_calls(call, 2, spec["repeats"], spec["min_time"], 10_000)
                results[f"{name}@{size}"] = {"median": statistics.median(times), "min": min(times)}
            except Exception as error:  # report, go on with the next row
                results[f"{name}@{size}"] = {"error": f"{type(error).__name__}: {error}"[:400]}
    return results


def run_worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), "--worker", json.dumps(spec)], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the {spec['variant']} worker exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# -- the parent: rounds, agreement, the table ---------------------------------------------------------------------
def agreement(outputs: Path, name: str, variant: str) -> float:
    mine, theirs = np.load(outputs / f"{name}__{variant}.npz"), np.load(outputs / f"{name}__autograd.npz")
    assert set(mine.files) == set(theirs.files), f"{name}: {variant} returns {sorted(mine.files)}"
    return max(float(np.max(np.abs(mine[k] - theirs[k])) / max(float(np.max(np.abs(theirs[k]))), 1e-30))
               for k in theirs.files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__[__doc__.index("Run (from"):])
    parser.add_argument("--rows", help="comma-separated rows (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds of calls a row and size, at least")
    parser.add_argument("--repeats", type=int, default=5, help="calls a row and size, at least")
    parser.add_argument("--quick", action="store_true", help="one round, the small size, 2 calls: a check")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    rows = _rows()
    coverage = covered(rows)  # every op of the registry is timed by some row
    names = args.rows.split(",") if args.rows else list(rows)
    unknown = [n for n in names if n not in rows]
    if unknown:
        parser.error(f"no row {', '.join(unknown)}; rows: {', '.join(rows)}")
    sizes = ["1e3"] if args.quick else list(SIZES)
    rounds, repeats, min_time = (1, 2, 0.0) if args.quick else (args.rounds, args.repeats, args.min_time)
    with tempfile.TemporaryDirectory() as tmp:
        folder, outputs = Path(tmp) / "modules", Path(tmp) / "outputs"
        folder.mkdir(), outputs.mkdir()
        manifest = derive_rows({n: rows[n] for n in names}, folder)
        timings: dict[str, dict[str, list]] = {}
        for r in range(rounds):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]  # rotated round by round
            for variant in order:
                print(f"  round {r + 1}/{rounds}: {variant}", file=sys.stderr, flush=True)
                spec = {"variant": variant, "rows": names, "sizes": sizes, "folder": str(folder), "manifest": manifest,
                        "outputs": str(outputs) if r == 0 else "", "repeats": repeats, "min_time": min_time}
                for key, result in run_worker(spec).items():
                    timings.setdefault(key, {}).setdefault(variant, []).append(result)
        table, failures = summarize(names, sizes, rows, timings, outputs)
    print_table(table, coverage)
    if not args.quick:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "rounds": rounds, "rows": table,
                                         "coverage": coverage}, indent=1) + "\n")
        args.json.with_suffix(".md").write_text(markdown(table, coverage))
        print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def summarize(names, sizes, rows, timings, outputs: Path):
    table, failures = [], []
    for name in names:
        entry = {"row": name, "ops": list(rows[name].ops), "agreement": {}}
        for variant in ("numpy", "torch"):
            try:
                error = agreement(outputs, name, variant)
            except (OSError, AssertionError) as problem:
                error, problem_text = None, str(problem)
                failures.append(f"{name} {variant}: no outputs to compare ({problem_text[:200]})")
            entry["agreement"][variant] = error
            if error is not None and not error <= TOLERANCE:
                failures.append(f"{name} {variant}: relative error {error:.2e} against autograd")
        for size in sizes:
            results = timings.get(f"{name}@{size}", {})
            cell = {"n": int(np.prod((SIZES[size], *SAMPLES[rows[name].sample])))}
            for variant in VARIANTS:
                got = results.get(variant, [])
                errors = [g["error"] for g in got if "error" in g]
                if errors or not got:
                    failures.append(f"{name}@{size} {variant}: {errors[0] if errors else 'not run'}")
                    continue
                cell[variant] = {"median_ms": 1e3 * statistics.median(g["median"] for g in got),
                                 "min_ms": 1e3 * min(g["min"] for g in got)}
            if "autograd" in cell:
                for variant in ("numpy", "torch"):
                    if variant in cell:
                        cell[f"{variant}_x"] = cell[variant]["median_ms"] / cell["autograd"]["median_ms"]
                if "numpy" in cell and "autograd-1thread" in cell:  # NumPy's elementwise passes use one core
                    cell["numpy_x_1thread"] = cell["numpy"]["median_ms"] / cell["autograd-1thread"]["median_ms"]
            entry[size] = cell
        table.append(entry)
    return table, failures


def print_table(table, coverage) -> None:
    print(f"{'row':<34} {'size':>5} {'autograd ms':>11} {'numpy ms':>9} {'x':>6} {'torch ms':>9} {'x':>6} "
          f"{'numpy x 1-thread autograd':>26}")
    for entry in table:
        for size in SIZES:
            cell = entry.get(size)
            if not cell or "autograd" not in cell:
                continue
            line = f"{entry['row']:<34} {size:>5} {cell['autograd']['median_ms']:>11.3f}"
            for variant in ("numpy", "torch"):
                if variant in cell:
                    mark = "*" if cell[f"{variant}_x"] > SLOWEST else " "
                    line += f" {cell[variant]['median_ms']:>9.3f} {cell[f'{variant}_x']:>5.2f}{mark}"
            if "numpy_x_1thread" in cell:
                line += f" {cell['numpy_x_1thread']:>26.2f}"
            print(line)
    print(f"* slower than {SLOWEST}x autograd")
    inside = {op: row for op, row in coverage.items() if op in COVERED_BY}
    print("timed inside another row: " + ", ".join(f"{op} ({row})" for op, row in sorted(inside.items())))


# Why a row is slower than SLOWEST x autograd, where it is: the causes measured (README, "Per op")
WHY = {
    "passes": "autograd runs one fused kernel each way; the closed form runs each of its operations as a pass of "
              "its own over the 4 MB array (every variant's process keeps freed memory, as the generated modules make "
              "it do at import, so these passes no longer fault fresh pages in)",
    "one core": "NumPy's elementwise passes and reductions run on one core, torch's on all (see the 1-thread column)",
    "windows": "NumPy has no pooling kernel: one strided pass per kernel offset, and sums over windows of 4",
    "two calls": "the torch module computes a convolution's two gradients in two calls (conv2d_weight, "
                 "conv2d_input), where autograd's one call unfolds the input once; oneDNN's times for the same "
                 "convolution also varied threefold between runs here (autograd's: 23 to 74 ms)",
    "calls": "at 10^3 entries a call's time is its Python calls and kernel launches, and the closed form makes more "
             "of them than autograd's fused kernels",
}


def why(entry: dict, size: str) -> str:
    """The causes of a slow cell, from its own numbers: calls at the small size; at the large one, one core where
    NumPy is within SLOWEST of autograd on one thread, and passes (or windows, for a pooling) where the torch module
    (which loses no threads) is slow too, or NumPy is slow on one thread."""
    cell = entry.get(size, {})
    if not any(cell.get(f"{variant}_x", 0) > SLOWEST for variant in ("numpy", "torch")):
        return ""  # no cause needed
    if size == "1e3":
        return "calls"
    causes = []
    if cell.get("numpy_x", 0) > SLOWEST and cell.get("numpy_x_1thread", 0) <= SLOWEST:
        causes.append("one core")
    if cell.get("torch_x", 0) > SLOWEST and any(op.startswith("conv") for op in entry["ops"]):
        causes.append("two calls")
    elif cell.get("torch_x", 0) > SLOWEST or cell.get("numpy_x_1thread", 0) > SLOWEST:
        causes.append("windows" if any(op.endswith(("pool1d", "pool2d")) for op in entry["ops"]) else "passes")
    return "; ".join(causes)


def markdown(table: list, coverage: dict) -> str:
    """The table as benchmarks/results/ops.md shows it."""
    lines = ["# Per-op benchmark (generated by benchmarks/ops.py; do not edit)", "",
             "Median ms of one loss-and-gradients call, float32, and the ratio to eager autograd's median; "
             f"* marks a ratio above {SLOWEST}. The causes: " +
             "; ".join(f"**{key}**: {text}" for key, text in WHY.items()) + ".", "",
             "| row | ops | size | autograd | NumPy | torch | NumPy / autograd on 1 thread | why |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in table:
        for size in SIZES:
            cell = entry.get(size)
            if not cell or "autograd" not in cell:
                continue
            parts = []
            for variant in ("numpy", "torch"):
                x = cell.get(f"{variant}_x")
                parts.append(f"{cell[variant]['median_ms']:.3f} ({x:.2f}×{'*' if x > SLOWEST else ''})"
                             if x is not None else "—")
            one = cell.get("numpy_x_1thread")
            lines.append(f"| {entry['row']} | {', '.join(entry['ops']) or '—'} | {size} ({cell['n']:,}) | "
                         f"{cell['autograd']['median_ms']:.3f} | {parts[0]} | {parts[1]} | "
                         f"{f'{one:.2f}×' if one else '—'} | {why(entry, size)} |")
    inside = sorted((op, row) for op, row in coverage.items() if op in COVERED_BY)
    lines += ["", "Timed inside another row: " + ", ".join(f"{op} ({row}: {COVERED_BY[op][1]})" for op, row in inside)
              + "."]
    return "\n".join(lines) + "\n"


def machine() -> dict:
    import os

    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "dtype": "float32"}


if __name__ == "__main__":
    sys.exit(main())
