"""The runtime benchmark: symprop's generated modules against torch.autograd and JAX, on the same data.

What it measures: the time of one call that returns the loss and the gradient of every parameter.

Workloads (every variant gets the same parameters and data, drawn from a fixed seed):
  mlp     Linear(784,256) ReLU Linear(256,128) ReLU Linear(128,10), CrossEntropyLoss over class indices
          (mean), at batch 32, 256 and 2048, in float32 and float64;
  neuron  the seed neuron y = sigmoid(w*x): Linear(1,1,bias=False) Sigmoid, MSELoss, x of shape (N, 1),
          N = 1e3 and 1e6, in float32 and float64;
  deep    16 hidden layers Linear(64,64)+Tanh on 64 inputs, then Linear(64,10), CrossEntropyLoss over 10
          classes, batch 64, in float32 and float64;
  transformer  TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=256, dropout=0, batch_first) on
          sequences of 32, then the mean over the sequence, Linear(64,10), CrossEntropyLoss; batch 16, float32
          (no JAX variant: the reference is torch's own layer);
  gelu_transformer  the same layer pre-norm with GELU (norm_first=True, activation="gelu"); batch 16, float32;
  char_lm examples/char_lm.toml, the character-level language model: token ids in, through an embedding,
          learned positions, two causal pre-norm encoder layers, a norm and a linear map onto 71 characters,
          cross-entropy per character; 32 windows of 32 characters (its training step: loss and gradients);
  gpt     examples/gpt.py, a GPT written as nanoGPT writes one, read by from_torch (torch.export): 2 layers, 2 heads,
          width 32, block 16, 72 tokens, SDPA, GELU, tied lm_head, forward(idx, targets) -> (logits, loss); batch 32
          (no JAX variant; autograd runs the torch module itself, its parameters those of build());
  lenet   examples/lenet.py's LeNet-5 on 28x28 images (build_mnist: its first convolution padded by 2), read by
          from_torch: Conv2d(1,6,5)+ReLU+max_pool2d(2), Conv2d(6,16,5)+ReLU+max_pool2d(2), Linear 400-120-84-10,
          CrossEntropyLoss; batch 64 (no JAX variant; autograd runs the torch module itself);
  derive  derive_network + render("numpy") for MLPs of depth D = 4, 16, 64, counting D Linear layers:
          D-1 blocks Linear(16,16)+Tanh on 16 inputs, then Linear(16,3), CrossEntropyLoss. (64 hidden blocks
          would be 129 layers, over symprop's cap of 128 layers a model.)

Variants:
  numpy             the generated NumPy module's loss_and_gradients
  torch             the generated torch module's loss_and_gradients, eager
  torch+compile     the same function under torch.compile (default inductor backend)
  autograd          nn.Sequential + nn loss; grads set to None; loss.backward(); the .grad tensors are read
  autograd+compile  the same, with torch.compile applied to the function that computes the loss (network
                    and loss); loss.backward() then runs the backward graph that AOTAutograd compiled with it
                    (a compiled function that calls backward() itself breaks its graph at that call anyway)
  jax.jit           jax.jit(jax.value_and_grad(loss)) of the same network and loss in jax.numpy, float64
                    enabled (jax_enable_x64); only when jax is importable (pip install 'symprop[bench]')

Method:
  - Every variant runs in its own fresh process (this script with --worker), so that NumPy's OpenBLAS
    threads, torch's OpenMP threads and XLA's thread pool never share a process. Thread counts are the
    libraries' defaults in every process (one per core), or --threads N for all of them; each worker
    records them (in the JSON, "threads"). The 1-minute load average is recorded as each job starts:
    other processes on the machine make the multi-threaded calls stall, and the medians with them.
  - Rounds: every (workload, variant) pair once a round, the variants round-robin (their order rotated
    each round), so that drift affects all alike.
  - In a worker: build the data with a fixed seed, warm up (eager: 3 calls; compiled: 6 calls, the first
    of which compiles), then time calls one by one with time.perf_counter, at least --repeats of them and
    at least --min-time seconds (gc frozen and disabled while timing). A row's median and min are over the
    per-call times of all rounds; "x autograd" is its median over eager autograd's median, same workload.
  - GEMM rate: float32 and float64 n x n matmuls (n = 2048) in NumPy, torch (and JAX), each in its own
    process, at the start and at the end of every round (only where a row has batch 2048); the machine's rate for a
    dtype is the best of them all (2 n^3 / the fastest call). At batch 2048, a network's "GEMM frac" is (its matmul
    FLOPs / that rate) / its median time: 1 would be the GEMM limit (above 1: the GEMM rate was measured while other
    processes held cores). Smaller batches get none: their matmuls fit in cache, and run faster than n=2048.
    Matmul FLOPs: forward 2*B*in*out for every Linear, backward the same for every weight gradient and for
    every input gradient except the first layer's.
  - Peak memory of one call, above what was allocated before it (parameters and data excluded, the
    returned loss and gradients included): NumPy by tracemalloc's peak (NumPy reports its buffers to it);
    torch by the allocations and frees that torch's CPU allocator reports to torch.profiler
    (profile_memory=True), summed in time order (tracemalloc does not see them); JAX by XLA's buffer
    assignment of the compiled function (memory_analysis(): temp + output bytes).
    The table shows the first round's measurement.
  - Agreement: each variant's loss and gradients (first round) are compared with eager autograd's in the
    same dtype on the same data: the largest |a - b| / max|b| over the loss and every gradient must be
    under 1e-4 in float32 and 1e-10 in float64.
  - --quick (CI): batch 16 / N 100 / batch 8, one round, 2 timed calls, two jobs at a time with one thread
    each; the torch.compile variants on the neuron only (inductor needs 5-30 s per larger network on two
    cores). Checks that every variant runs and agrees with autograd; times mean nothing there.

Run (from the project root):
  .venv/bin/python benchmarks/run.py                 # full: ~20 min on 2 cores; writes benchmarks/results/run.json
  PYTHONPATH=. python benchmarks/run.py --device cuda  # the GPU benchmark (benchmarks/gpu.py), where a GPU is
  .venv/bin/python benchmarks/run.py --rounds 5 --threads 1 --workloads mlp,derive --json /tmp/run.json
  .venv/bin/python benchmarks/run.py --quick         # CI: tiny sizes, 1 round; checks that every variant
                                                     # runs and agrees with autograd; exit 1 if not
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
DEFAULT_JSON = HERE.parent / "results" / "run.json"
# `symprop bench` (SYMPROP_BENCH_PROG set) writes into the current folder: the committed results stay as they are
CLI_JSON = Path("symprop_bench.json")
VARIANTS = ("numpy", "torch", "torch+compile", "autograd", "autograd+compile", "jax.jit")
TORCH_VARIANTS = ("torch", "torch+compile", "autograd", "autograd+compile")
COMPILED = ("torch+compile", "autograd+compile", "jax.jit")
BASELINE = "autograd"
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
GEMM_N, QUICK_GEMM_N = 2048, 256
GEMM_FRACTION_BATCH = 2048  # the batch from which a network's time is reported against the GEMM limit

# -- workloads ------------------------------------------------------------------------------
# A network: inputs, layers as in nn.Sequential (("linear", out, bias) | ("relu",) | ...), a loss.
NETWORKS = {
    "mlp": {"inputs": 784, "loss": "cross_entropy", "classes": 10,
            "layers": [("linear", 256, True), ("relu",), ("linear", 128, True), ("relu",), ("linear", 10, True)]},
    "neuron": {"inputs": 1, "loss": "mse", "layers": [("linear", 1, False), ("sigmoid",)]},
    "deep": {"inputs": 64, "loss": "cross_entropy", "classes": 10,
             "layers": [("linear", 64, True), ("tanh",)] * 16 + [("linear", 10, True)]},
    "transformer": {"inputs": 64, "sequence": 32, "loss": "cross_entropy", "classes": 10,
                    "layers": [("transformer", 4, 256), ("mean_pool",), ("linear", 10, True)]},
    # the same layer pre-norm with GELU (norm_first, activation="gelu"): erf and its derivative in both backends
    "gelu_transformer": {"inputs": 64, "sequence": 32, "loss": "cross_entropy", "classes": 10,
                         "layers": [("transformer", 4, 256, "gelu", True), ("mean_pool",), ("linear", 10, True)]},
    # examples/char_lm.toml: token ids in, a distribution over the next character per position out (its step:
    # the loss and every gradient of a batch of windows of 32 characters)
    "char_lm": {"spec": "examples/char_lm.toml", "inputs": 32, "sequence": 32, "loss": "cross_entropy",
                "classes": 71, "layers": []},
    # examples/gpt.py, as nanoGPT writes a GPT, read by from_torch: forward(idx, targets) -> (logits, loss)
    "gpt": {"factory": "examples/gpt.py", "own_loss": True, "inputs": 16, "sequence": 16, "loss": "cross_entropy",
            "classes": 72, "layers": []},
    # examples/lenet.py on MNIST's 28x28 images (its first convolution padded by 2), read by from_torch: convolutions,
    # max pooling, linear layers and cross-entropy
    # In float32, max pooling's arg-max flips where two entries of a window are within rounding of each other and
    # the convolutions before it round differently (the NumPy module's tensordot against torch's kernel): the δ of
    # that window moves to the other entry, some 1e-2 of the kernels' gradients at batch 64 (one window in 25,600).
    # float64 agrees to 1e-15.
    "lenet": {"factory": "examples/lenet.py:build_mnist", "image": (1, 28, 28), "inputs": 784, "loss": "cross_entropy",
              "classes": 10, "layers": [], "tolerance": {"float32": 5e-2, "float64": 1e-10}},
}
JAX_WORKLOADS = ("mlp", "neuron", "deep")
FULL_CASES = ([("mlp", dtype, batch) for batch in (32, 256, 2048) for dtype in ("float32", "float64")]
              + [("neuron", dtype, n) for n in (1000, 1_000_000) for dtype in ("float32", "float64")]
              + [("deep", dtype, 64) for dtype in ("float32", "float64")]
              + [("transformer", dtype, 16) for dtype in ("float32", "float64")]
              + [("gelu_transformer", "float32", 16)]
              + [("char_lm", dtype, 32) for dtype in ("float32", "float64")]
              + [("gpt", dtype, 32) for dtype in ("float32", "float64")]
              + [("lenet", dtype, 64) for dtype in ("float32", "float64")])
QUICK_CASES = [("mlp", "float32", 16), ("mlp", "float64", 16), ("neuron", "float32", 100),
               ("neuron", "float64", 100), ("deep", "float32", 8), ("deep", "float64", 8),
               ("transformer", "float32", 2), ("transformer", "float64", 2), ("gelu_transformer", "float32", 2),
               ("char_lm", "float32", 2),
               ("char_lm", "float64", 2), ("gpt", "float32", 2), ("gpt", "float64", 2), ("lenet", "float32", 2),
               ("lenet", "float64", 2)]
FULL_DEPTHS, QUICK_DEPTHS = (4, 16, 64), (2,)
# --quick runs the torch.compile variants on the neuron only: on two cores inductor takes 5-30 s to compile the
# forward and backward of each larger network, and a cold cache (a fresh machine) adds some 20 s once. The slow
# first job starts first, beside the cheap ones, so that the second compiled job finds inductor's cache warm.
QUICK_COMPILED_WORKLOADS = ("neuron",)
QUICK_ORDER = ("torch+compile", "numpy", "torch", "autograd", "jax.jit", "autograd+compile")


def case_id(case: dict) -> str:
    return f"{case['workload']}-{case['dtype']}-{case['size']}"


def linears(net: dict) -> list[tuple[int, int, int, bool]]:
    """(index in the Sequential, in_features, out_features, bias) of every Linear layer."""
    width, out = net["inputs"], []
    for i, layer in enumerate(net["layers"]):
        if layer[0] == "linear":
            out.append((i, width, layer[1], layer[2]))
            width = layer[1]
    return out


def has_sequence(net: dict) -> bool:
    return "sequence" in net


def matmul_flops(net: dict, batch: int) -> int:
    """Forward, weight-gradient and input-gradient matmuls (no input gradient for the first layer)."""
    layers = linears(net)
    return sum(2 * batch * n_in * n_out * (3 if k else 2) for k, (_, n_in, n_out, _) in enumerate(layers))


def derive_mlp(depth: int) -> dict:
    """The derivation workload: depth Linear layers of width 16 with Tanh between them."""
    return {"inputs": 16, "loss": "cross_entropy", "classes": 3,
            "layers": [("linear", 16, True), ("tanh",)] * (depth - 1) + [("linear", 3, True)]}


def symprop_model(net: dict, name: str):
    import symprop as S

    if "spec" in net:  # a model of examples/, under the benchmark's name
        model = S.load_spec(HERE.parent.parent / net["spec"])
        model.name = name
        return model
    if "factory" in net:  # a torch module of examples/, exported (the GPT's loss is its forward's own)
        module, loss, example_inputs, *target = gpt_factory(net)()
        return S.from_torch(module, loss, example_inputs=example_inputs, example_target=target[0] if target else None,
                            name=name)

    make = {"relu": S.ReLU, "tanh": S.Tanh, "sigmoid": S.Sigmoid, "gelu": S.GELU, "mean_pool": S.MeanPool}
    layers, width = [], net["inputs"]
    for layer in net["layers"]:
        if layer[0] == "linear":
            layers.append(S.Linear(width, layer[1], layer[2]))
            width = layer[1]
        elif layer[0] == "transformer":  # ("transformer", heads, feed-forward width[, activation, norm_first])
            layers.append(S.TransformerEncoderLayer(width, *layer[1:]))
        else:
            layers.append(make[layer[0]]())
    loss = S.CrossEntropyLoss() if net["loss"] == "cross_entropy" else S.MSELoss()
    return S.Model(S.Sequential(*layers), loss, name=name, inputs=net["inputs"], sequence=net.get("sequence"))


def gpt_factory(net: dict):
    """A factory of examples/ (examples/gpt.py's build(): the GPT, its loss, example inputs; lenet.py's build_mnist()
    adds example targets), the same parameters every call (seed 0)."""
    path, _, function = net["factory"].partition(":")
    return getattr(import_path(HERE.parent.parent / path), function or "build")


def make_data(net: dict, dtype: str, batch: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Parameters (nn.Linear's default init, state_dict names), inputs x and targets t, as NumPy arrays."""
    rng = np.random.default_rng(seed)
    params = {}
    if "factory" in net:  # the module's own initialization
        params = {k: v.astype(dtype) for k, v in symprop_model(net, "data").source_params().items()}
    elif has_sequence(net):  # torch's initialization of every module, as symprop's model states it
        model = symprop_model(net, "data")
        for key, shape in model.parameters.items():
            kind, *scale = model.initializations[key]
            params[key] = (rng.uniform(-scale[0], scale[0], size=shape) if kind == "uniform" else
                           rng.normal(0, scale[0], size=shape) if kind == "normal" else
                           getattr(np, kind)(shape)).astype(dtype)
    if "image" in net:  # images in, a class out
        x = rng.uniform(size=(batch, *net["image"])).astype(dtype)
        return params, x, rng.integers(0, net["classes"], size=batch, dtype=np.int64)
    if "spec" in net or "factory" in net:  # tokens in, the next token of each position out
        x = rng.integers(0, net["classes"], size=(batch, net["sequence"]), dtype=np.int64)
        return params, x, rng.integers(0, net["classes"], size=(batch, net["sequence"]), dtype=np.int64)
    for i, n_in, n_out, bias in [] if has_sequence(net) else linears(net):
        bound = 1 / np.sqrt(n_in)
        params[f"{i}.weight"] = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(dtype)
        if bias:
            params[f"{i}.bias"] = rng.uniform(-bound, bound, size=(n_out,)).astype(dtype)
    x = rng.standard_normal((batch, *([net["sequence"]] if has_sequence(net) else []), net["inputs"])).astype(dtype)
    if net["loss"] == "cross_entropy":
        t = rng.integers(0, net["classes"], size=batch, dtype=np.int64)
    else:
        t = rng.uniform(size=(batch, linears(net)[-1][2])).astype(dtype)
    return params, x, t


def write_modules(folder: Path, workloads) -> None:
    """Derive each workload's network with symprop and write bench_<workload>_{numpy,torch}.py."""
    import symprop as S

    for workload in workloads:
        d = S.derive_network(symprop_model(NETWORKS[workload], f"bench_{workload}"))
        for target in ("numpy", "torch"):
            (folder / f"bench_{workload}_{target}.py").write_text(d.render(target))


def import_path(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # as import does: a dataclass looks its module up
    spec.loader.exec_module(module)
    return module


# -- variants: each builds a call() -> (loss, {name: gradient}) on one workload's data ----------------
def build_numpy(case, params, x, t, modules):
    mod = import_path(Path(modules) / f"bench_{case['workload']}_numpy.py")
    return lambda: mod.loss_and_gradients(params, x, t)


def build_generated_torch(case, params, x, t, modules, compiled=False):
    import torch

    mod = import_path(Path(modules) / f"bench_{case['workload']}_torch.py")
    tp = {k: torch.from_numpy(v) for k, v in params.items()}
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    fn = torch.compile(mod.loss_and_gradients) if compiled else mod.loss_and_gradients
    return lambda: fn(tp, tx, tt)


def torch_network(net: dict, params: dict, dtype: str):
    import torch
    from torch import nn

    class MeanPool(nn.Module):
        def forward(self, z):
            return z.mean(dim=1)

    layers, width = [], net["inputs"]
    for layer in net["layers"]:
        if layer[0] == "linear":
            layers.append(nn.Linear(width, layer[1], bias=layer[2]))
            width = layer[1]
        elif layer[0] == "transformer":
            options = dict(zip(("activation", "norm_first"), layer[3:], strict=False))
            layers.append(nn.TransformerEncoderLayer(width, layer[1], layer[2], dropout=0.0, batch_first=True,
                                                     **options))
        else:
            layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
                           "mean_pool": MeanPool}[layer[0]]())
    model = nn.Sequential(*layers).to(getattr(torch, dtype))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    loss_fn = nn.CrossEntropyLoss() if net["loss"] == "cross_entropy" else nn.MSELoss()
    return model, loss_fn


def torch_char_lm(params: dict, dtype: str):
    """examples/char_lm.toml in torch: embedding, learned positions, two causal pre-norm encoder layers, a norm, a
    linear map onto the vocabulary; cross-entropy per character."""
    import torch
    from torch import nn

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("0", nn.Embedding(71, 32))
            self.positions = nn.Parameter(torch.zeros(32, 32))
            for i in (2, 3):
                self.add_module(str(i), nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                                                   norm_first=True))
            self.add_module("4", nn.LayerNorm(32))
            self.add_module("5", nn.Linear(32, 71))
            self.mask = nn.Transformer.generate_square_subsequent_mask(32)

        def forward(self, x):
            h = getattr(self, "0")(x) + self.positions
            for i in ("2", "3"):
                h = getattr(self, i)(h, src_mask=self.mask.to(h.dtype), is_causal=True)
            return getattr(self, "5")(getattr(self, "4")(h))

    model = CharLM().to(getattr(torch, dtype))
    model.load_state_dict({("positions" if k == "1.weight" else k): torch.from_numpy(v) for k, v in params.items()})
    return model, lambda y, t: nn.functional.cross_entropy(y.reshape(-1, 71), t.reshape(-1))


def build_autograd(case, params, x, t, modules, compiled=False):
    import torch

    net = NETWORKS[case["workload"]]
    if "factory" in net:  # the GPT computes its own loss: forward(idx, targets) -> (logits, loss)
        model, loss_fn, *_ = gpt_factory(net)()
        model = model.to(getattr(torch, case["dtype"]))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=False)
        return autograd_call(model, None if net.get("own_loss") else loss_fn, torch.from_numpy(x), torch.from_numpy(t),
                             compiled)
    model, loss_fn = torch_char_lm(params, case["dtype"]) if "spec" in net else \
        torch_network(net, params, case["dtype"])
    return autograd_call(model, loss_fn, torch.from_numpy(x), torch.from_numpy(t), compiled)


def autograd_call(model, loss_fn, x, t, compiled: bool):
    """A call() -> (loss, {state_dict key: gradient}): the loss of model(x) against t, then backward()."""
    import torch

    named = dict(model.named_parameters())

    def compute_loss(x, t):
        return model(x, t)[1] if loss_fn is None else loss_fn(model(x), t)

    compute = torch.compile(compute_loss) if compiled else compute_loss

    def call():
        for p in named.values():
            p.grad = None
        loss = compute(x, t)
        loss.backward()
        return loss, {("1.weight" if k == "positions" else k): p.grad for k, p in named.items()}

    return call


def jax_loss(net: dict):
    import jax
    import jax.numpy as jnp

    def loss(params, x, t):
        h = x
        for i, layer in enumerate(net["layers"]):
            if layer[0] == "linear":
                h = h @ params[f"{i}.weight"].T + (params[f"{i}.bias"] if layer[2] else 0)
            else:
                h = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[layer[0]](h)
        if net["loss"] == "cross_entropy":
            return jnp.mean(jax.nn.logsumexp(h, axis=1) - jnp.take_along_axis(h, t[:, None], axis=1)[:, 0])
        return jnp.mean((h - t) ** 2)

    return loss


def build_jax(case, params, x, t, modules):
    import jax

    jp = {k: jax.device_put(v) for k, v in params.items()}
    jx, jt = jax.device_put(x), jax.device_put(t)
    fn = jax.jit(jax.value_and_grad(jax_loss(NETWORKS[case["workload"]])))
    call = lambda: jax.block_until_ready(fn(jp, jx, jt))  # noqa: E731
    call.memory = lambda: fn.lower(jp, jx, jt).compile().memory_analysis()
    return call


BUILDERS = {
    "numpy": build_numpy,
    "torch": build_generated_torch,
    "torch+compile": lambda *a: build_generated_torch(*a, compiled=True),
    "autograd": build_autograd,
    "autograd+compile": lambda *a: build_autograd(*a, compiled=True),
    "jax.jit": build_jax,
}


# -- measuring, inside a worker ----------------------------------------------------------------
def time_calls(call, warmup: int, repeats: int, min_time: float, max_repeats: int) -> tuple[list[float], float]:
    """(per-call seconds, seconds of the first call, which includes any compilation)."""
    start = time.perf_counter()
    out = call()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        out = call()
    del out
    gc.collect()
    gc.disable()
    times, begin = [], time.perf_counter()
    try:
        while len(times) < repeats or (time.perf_counter() - begin < min_time and len(times) < max_repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times, first


def peak_numpy(call) -> int:
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak


def peak_torch(call) -> int:
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = call()
    del out
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def peak_jax(call) -> int:
    stats = call.memory()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


MEMORY_METHODS = {
    "numpy": "tracemalloc peak",
    "torch": "torch.profiler allocator events",
    "jax": "XLA memory_analysis temp+output",
}


def memory_kind(variant: str) -> str:
    return "numpy" if variant == "numpy" else "jax" if variant == "jax.jit" else "torch"


def to_numpy(variant: str, out) -> dict[str, np.ndarray]:
    loss, grads = out
    if variant in TORCH_VARIANTS:
        loss, grads = loss.detach().numpy(), {k: v.detach().numpy() for k, v in grads.items()}
    arrays = {"loss": np.asarray(loss, dtype=np.float64)}
    arrays.update({f"grad:{k}": np.asarray(v) for k, v in grads.items()})
    return arrays


def openblas_threads() -> int | None:
    """What openblas_get_num_threads says in NumPy's OpenBLAS (the way threadpoolctl asks), or None."""
    import ctypes

    try:
        paths = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                 if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:
        return None
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                return int(getattr(lib, name)())
    return None


def thread_info(variant: str) -> dict:
    info = {"cpu_count": os.cpu_count(), "openblas": openblas_threads(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                               "XLA_FLAGS") if k in os.environ}}
    if "torch" in sys.modules:
        import torch

        info["torch"] = torch.get_num_threads()
        info["torch_interop"] = torch.get_num_interop_threads()
    if "jax" in sys.modules:
        info["xla"] = os.environ.get("XLA_FLAGS") or "default: one Eigen thread per core"
    return info


def measure_case(variant: str, case: dict, spec: dict) -> dict:
    params, x, t = make_data(NETWORKS[case["workload"]], case["dtype"], case["size"])
    call = BUILDERS[variant](case, params, x, t, spec["modules"])
    gc.freeze()  # the libraries' objects, imported by now, out of the collector's way: collections stay cheap
    warmup = spec["warmup_compiled"] if variant in COMPILED else spec["warmup"]
    times, first = time_calls(call, warmup, spec["repeats"], spec["min_time"], spec["max_repeats"])
    result = {"case": case, "times": times, "first_call_s": first}
    if spec["outputs"]:
        np.savez(Path(spec["outputs"]) / f"{case_id(case)}__{variant}.npz", **to_numpy(variant, call()))
    kind = memory_kind(variant)
    result["peak_bytes"] = {"numpy": peak_numpy, "torch": peak_torch, "jax": peak_jax}[kind](call)
    result["peak_method"] = MEMORY_METHODS[kind]
    return result


def matmul_call(library: str, a: np.ndarray, b: np.ndarray):
    """A call that multiplies a and b in `library` (and waits for the result)."""
    if library == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: ta @ tb
    if library == "jax":
        import jax

        ja, jb = jax.device_put(a), jax.device_put(b)
        f = jax.jit(lambda p, q: p @ q)
        return lambda: jax.block_until_ready(f(ja, jb))
    return lambda: a @ b


def gemm_rate(library: str, n: int, repeats: int) -> list[dict]:
    """FLOP/s of an n x n matmul in float32 and float64: best and median of `repeats` timed calls."""
    rng = np.random.default_rng(0)
    rows = []
    for dtype in ("float32", "float64"):
        a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        times, _ = time_calls(matmul_call(library, a, b), 2, repeats, 0.0, repeats)
        flops = 2 * n**3
        rows.append({"library": library, "dtype": dtype, "n": n, "best_flops": flops / min(times),
                     "median_flops": flops / statistics.median(times)})
    return rows


def derive_time(depth: int) -> dict:
    import symprop as S  # imported before the clock starts: import time is not derivation time

    model = symprop_model(derive_mlp(depth), "mlp")
    t0 = time.perf_counter()
    d = S.derive_network(model)
    t1 = time.perf_counter()
    d.render("numpy")
    t2 = time.perf_counter()
    return {"depth": depth, "derive_s": t1 - t0, "render_s": t2 - t1, "total_s": t2 - t0}


def raise_heap_threshold() -> None:
    """What every generated module does at import (an untouched 31 MiB block, freed: glibc then keeps up to 62 MiB of
    freed heap instead of handing it back to the system after each call), done in every variant's process, so that
    no variant pays page faults that another is spared. Autograd's own call changes little with it."""
    block = np.empty(31 << 20, np.uint8)
    del block


def worker(spec: dict) -> dict:
    """One job, in this fresh process: a variant on its cases, a GEMM rate, or a derivation time."""
    raise_heap_threshold()
    kind = spec["kind"]
    if kind == "gemm":
        if spec["library"] == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        rows = gemm_rate(spec["library"], spec["n"], spec["repeats"])
        return {"gemm": rows, "threads": thread_info(spec["library"])}
    if kind == "derive":
        return {"derive": derive_time(spec["depth"])}
    variant = spec["variant"]
    if variant == "jax.jit":
        import jax

        jax.config.update("jax_enable_x64", True)
    results = []
    for case in spec["cases"]:
        try:
            results.append(measure_case(variant, case, spec))
        except Exception:  # report and go on with the next case
            results.append({"case": case, "error": traceback.format_exc(limit=4)})
        if variant in ("torch+compile", "autograd+compile"):
            import torch

            torch._dynamo.reset()  # the next case starts from a clean compile cache (quick mode)
    return {"variant": variant, "results": results, "threads": thread_info(variant)}


# -- the parent: scheduling, collecting, reporting ----------------------------------------------------
def thread_env(threads: int | None) -> dict:
    """The environment of every worker: the libraries' default thread counts, or `threads` for all of them."""
    env = dict(os.environ)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
        if threads == 1:  # XLA has no thread-count variable; this makes its CPU backend single-threaded
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
    return env


def run_job(spec: dict, timeout: float, env: dict) -> dict:
    """Run one job in a fresh process; its result is the last line of its stdout."""
    spec = {**spec, "load_before": os.getloadavg()[0]}  # other processes on the machine disturb timings
    try:
        proc = subprocess.run([sys.executable, str(HERE), "--worker", json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"spec": spec, "error": f"worker exited {proc.returncode}:\n{proc.stderr[-2000:]}"}
    return {"spec": spec, **json.loads(lines[-1])}


def variant_jobs(cases, variants, base: dict, quick: bool) -> list[dict]:
    """One round's variant jobs: one per (case, variant), variants round-robin; --quick: one per variant."""
    def fits(v, case):
        return v != "jax.jit" or case["workload"] in JAX_WORKLOADS

    if not quick:
        return [{**base, "variant": v, "cases": [case]} for case in cases for v in variants if fits(v, case)]
    jobs = []
    for v in sorted(variants, key=QUICK_ORDER.index):  # the slow compile first, beside the cheap jobs
        mine = [c for c in cases if fits(v, c) and (v not in ("torch+compile", "autograd+compile")
                                                      or c["workload"] in QUICK_COMPILED_WORKLOADS)]
        if mine:
            jobs.append({**base, "variant": v, "cases": mine})
    return jobs


def plan(cases, depths, variants, rounds: int, timing: dict, modules: str, outputs: str, quick: bool,
         libraries) -> list[dict]:
    """Jobs in the order they run, round after round: [GEMM,] variants, derivations, GEMM."""
    jobs = []
    for r in range(rounds):
        gemm = [{"kind": "gemm", "library": lib, "n": QUICK_GEMM_N if quick else GEMM_N,
                 "repeats": 2 if quick else 5, "round": r} for lib in libraries]
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        base = {"kind": "variant", "modules": modules, "round": r, "outputs": outputs if r == 0 else None,
                **timing}
        jobs += [] if quick else gemm  # GEMM twice a round: the best of more tries is nearer the machine's rate
        jobs += variant_jobs(cases, order, base, quick)
        jobs += [{"kind": "derive", "depth": depth, "round": r} for depth in depths]
        jobs += gemm
    return jobs


def describe(spec: dict) -> str:
    if spec["kind"] == "gemm":
        return f"gemm {spec['library']}"
    if spec["kind"] == "derive":
        return f"derive depth {spec['depth']}"
    return f"{spec['variant']} on {', '.join(case_id(c) for c in spec['cases'])}"


def run_jobs(jobs: list[dict], parallel: int, timeout: float, env: dict) -> list[dict]:
    def one(indexed):
        i, spec = indexed
        t0 = time.perf_counter()
        result = run_job(spec, timeout, env)
        status = "FAILED" if "error" in result else "ok"
        print(f"[{i + 1}/{len(jobs)}] round {spec['round'] + 1}: {describe(spec)}: {status} "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        return result

    if parallel > 1:
        with ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(one, enumerate(jobs)))
    return [one(item) for item in enumerate(jobs)]


def relative_error(mine: dict, reference: dict) -> float:
    """max over the loss and every gradient of max|a - b| / max|b|."""
    if set(mine) != set(reference):
        raise ValueError(f"keys differ: {sorted(mine)} vs {sorted(reference)}")
    worst = 0.0
    for key, ref in reference.items():
        a, b = np.asarray(mine[key], dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"{key}: shape {a.shape}, autograd's {b.shape}")
        scale = max(float(np.max(np.abs(b))), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


def agreement(outputs: Path, case: dict, variant: str) -> float | None:
    mine = outputs / f"{case_id(case)}__{variant}.npz"
    ref = outputs / f"{case_id(case)}__{BASELINE}.npz"
    if not (mine.exists() and ref.exists()):
        return None
    with np.load(mine) as a, np.load(ref) as b:
        return relative_error(dict(a), dict(b))


def gemm_limits(results: list[dict]) -> tuple[list[dict], dict]:
    """Per library and dtype (best over rounds), and the machine's best FLOP/s per dtype."""
    rows = {}
    for r in results:
        for g in r.get("gemm", []):
            key = (g["library"], g["dtype"])
            if key not in rows or g["best_flops"] > rows[key]["best_flops"]:
                rows[key] = g
    best = {}
    for (_, dtype), g in rows.items():
        best[dtype] = max(best.get(dtype, 0.0), g["best_flops"])
    return list(rows.values()), best


def summarize(results: list[dict], cases, variants, outputs: Path, gemm_best: dict) -> tuple[list[dict], list]:
    """One row per (case, variant): pooled per-call times of all rounds, ratio, GEMM fraction, memory, error."""
    pooled, failures = {}, []
    for r in results:
        if r["spec"]["kind"] != "variant":
            continue
        if "error" in r:
            failures.append({"job": describe(r["spec"]), "error": r["error"]})
            continue
        for item in r["results"]:
            key = (case_id(item["case"]), r["variant"])
            if "error" in item:
                failures.append({"job": f"{r['variant']} on {key[0]}", "error": item["error"]})
                continue
            entry = pooled.setdefault(key, {"times": [], "round_medians": [], "first_call_s": [], "peak": [],
                                            "load": []})
            entry["load"].append(r["spec"]["load_before"])
            entry["times"] += item["times"]
            entry["round_medians"].append(statistics.median(item["times"]))
            entry["first_call_s"].append(item["first_call_s"])
            entry["peak"].append((item["peak_bytes"], item["peak_method"]))
    rows = []
    for case in cases:
        cid = case_id(case)
        base = pooled.get((cid, BASELINE))
        base_median = statistics.median(base["times"]) if base else None
        net = NETWORKS[case["workload"]]
        flops = matmul_flops(net, case["size"])
        for variant in variants:
            entry = pooled.get((cid, variant))
            if entry is None:
                continue
            median = statistics.median(entry["times"])
            row = {"id": cid, **case, "variant": variant, "median_ms": median * 1e3,
                   "min_ms": min(entry["times"]) * 1e3, "calls": len(entry["times"]),
                   "round_medians_ms": [m * 1e3 for m in entry["round_medians"]],
                   "first_call_s": max(entry["first_call_s"]), "load_mean": statistics.mean(entry["load"]),
                   "ratio_to_autograd": median / base_median if base_median else None,
                   "matmul_flops": flops, "gemm_fraction": None,
                   "peak_bytes": entry["peak"][0][0], "peak_method": entry["peak"][0][1],
                   "rel_error": None, "agrees": None}
            if case["workload"] in ("mlp", "deep") and case["size"] >= GEMM_FRACTION_BATCH \
                    and case["dtype"] in gemm_best:
                row["gemm_fraction"] = flops / gemm_best[case["dtype"]] / median
            try:
                row["rel_error"] = agreement(outputs, case, variant)
            except ValueError as error:
                failures.append({"job": f"{variant} on {cid}", "error": f"cannot compare: {error}"})
            if row["rel_error"] is not None:
                tolerance = NETWORKS[case["workload"]].get("tolerance", TOLERANCE)
                row["agrees"] = row["rel_error"] <= tolerance[case["dtype"]]
                if not row["agrees"]:
                    failures.append({"job": f"{variant} on {cid}", "error":
                                     f"disagrees with autograd: relative error {row['rel_error']:.2e}"})
            elif variant != BASELINE:
                failures.append({"job": f"{variant} on {cid}", "error": "no outputs to compare with autograd"})
            rows.append(row)
    return rows, failures


def summarize_derive(results: list[dict], depths) -> list[dict]:
    rows = []
    for depth in depths:
        mine = [r["derive"] for r in results if "derive" in r and r["derive"]["depth"] == depth]
        if mine:
            rows.append({"depth": depth, "runs": len(mine),
                         "derive_median_s": statistics.median(m["derive_s"] for m in mine),
                         "render_median_s": statistics.median(m["render_s"] for m in mine),
                         "total_median_s": statistics.median(m["total_s"] for m in mine),
                         "total_min_s": min(m["total_s"] for m in mine)})
    return rows


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def print_tables(rows, derive_rows, gemm_rows, gemm_best) -> None:
    print(f"{'workload':<8} {'dtype':<7} {'batch':>7} {'variant':<16} {'median ms':>10} {'min ms':>9} "
          f"{'x autograd':>10} {'GEMM frac':>9} {'peak MiB':>9} {'rel err':>8} {'ok':>3}")
    previous = None
    for r in rows:
        if previous is not None and r["id"] != previous:
            print()
        previous = r["id"]
        ok = {True: "yes", False: "NO", None: "-"}[r["agrees"]]
        print(f"{r['workload']:<8} {r['dtype']:<7} {r['size']:>7} {r['variant']:<16} {r['median_ms']:>10.4f} "
              f"{r['min_ms']:>9.4f} {fmt(r['ratio_to_autograd'], '.2f'):>10} {fmt(r['gemm_fraction'], '.3f'):>9} "
              f"{r['peak_bytes'] / 2**20:>9.3f} {fmt(r['rel_error'], '.1e'):>8} {ok:>3}")
    print("\nbatch: the batch size, N for the neuron. x autograd: median / eager autograd's median, same workload.")
    print("GEMM frac (batch 2048): (matmul FLOPs / the best GEMM rate for the dtype) / median. "
          "rel err: against eager autograd.")
    print("peak MiB: one call, above what was allocated before it; NumPy: tracemalloc peak; torch: allocator events")
    print("reported to torch.profiler (profile_memory=True); JAX: XLA memory_analysis(), temp + output bytes.")
    if gemm_rows:
        print("\nGEMM rate (n x n matmul, GFLOP/s, best and median call):")
    for g in sorted(gemm_rows, key=lambda g: (g["dtype"], g["library"])):
        print(f"  {g['library']:<6} {g['dtype']:<7} n={g['n']:<5} best {g['best_flops'] / 1e9:8.1f}   "
              f"median {g['median_flops'] / 1e9:8.1f}")
    if gemm_best:
        print("  limit used: " + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in sorted(gemm_best.items())))
    over = [r for r in rows if (r["gemm_fraction"] or 0) > 1]
    if over:
        print(f"  {len(over)} row(s) above the limit: the GEMM rate was measured while other processes held "
              "cores (see the load below), so it is underestimated")
    if derive_rows:
        print("\nderivation (derive_network + render numpy), MLP of D Linear layers, width 16, tanh:")
        print(f"  {'depth':>5} {'derive s':>9} {'render s':>9} {'total s':>8} {'min s':>7} {'runs':>4}")
        for d in derive_rows:
            print(f"  {d['depth']:>5} {d['derive_median_s']:>9.3f} {d['render_median_s']:>9.3f} "
                  f"{d['total_median_s']:>8.3f} {d['total_min_s']:>7.3f} {d['runs']:>4}")


def versions() -> dict:
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
           "processor": platform.processor() or platform.machine()}
    for name in ("torch", "jax", "jaxlib", "sympy"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # not installed
            out[name] = None
    return out


def main(argv=None, prog=None) -> int:
    """The command line: argv as sys.argv[1:]; prog names the command in --help (symprop bench)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every workload and variant (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="at least this many timed calls a job (default 10)")
    parser.add_argument("--min-time", type=float, default=1.0, help="and at least this many seconds (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="CI: tiny sizes, 1 round, few repeats, JAX optional; fails unless every variant "
                             "runs and agrees with autograd")
    parser.add_argument("--no-jax", action="store_true", help="leave the JAX variant out")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (OMP/OpenBLAS/MKL_NUM_THREADS; XLA only for 1); "
                             "default: the libraries' defaults (--quick: 1)")
    default_json = CLI_JSON if prog else DEFAULT_JSON
    parser.add_argument("--json", type=Path, default=None,
                        help=f"results file (default {default_json}; --quick writes none unless given)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)} (default all)")
    workloads = ",".join([*NETWORKS, "derive"])
    parser.add_argument("--workloads", default=workloads,
                        help=f"comma-separated subset of {workloads} (default all)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="cuda: the GPU benchmark instead (benchmarks/gpu.py: its workloads, CUDA events; the "
                             "options after --device go to it)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.device == "cuda":  # gpu.py reads this module's networks: it runs as a script of its own, not imported
        return subprocess.call([sys.executable, str(HERE.parent / "gpu.py"), *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be at least 1")
    workloads = set(args.workloads.split(","))
    if not workloads <= {*NETWORKS, "derive"}:
        parser.error(f"unknown workloads: {', '.join(sorted(workloads - {*NETWORKS, 'derive'}))}")
    if not set(args.variants.split(",")) <= set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(set(args.variants.split(',')) - set(VARIANTS)))}")

    started = time.perf_counter()
    has_jax = importlib.util.find_spec("jax") is not None and not args.no_jax
    no_jax = "" if has_jax else " (no jax.jit: " + ("--no-jax)" if args.no_jax else "jax is not importable)")
    variants = [v for v in VARIANTS if (has_jax or v != "jax.jit") and v in args.variants.split(",")]
    if "autograd" not in variants:
        parser.error("--variants must include autograd: every ratio is to it")
    libraries = ["numpy", "torch"] + (["jax"] if has_jax else [])
    if args.quick:
        rounds, depths, parallel, timeout = 1, QUICK_DEPTHS, 2, 120
        threads = 1 if args.threads is None else args.threads  # two jobs at once, one core each
        timing = {"warmup": 1, "warmup_compiled": 2, "repeats": 2, "min_time": 0.0, "max_repeats": 2}
        raw_cases = QUICK_CASES
    else:
        rounds, depths, parallel, timeout, threads = args.rounds, FULL_DEPTHS, 1, 600, args.threads
        timing = {"warmup": 3, "warmup_compiled": 6, "repeats": args.repeats, "min_time": args.min_time,
                  "max_repeats": 1000}
        raw_cases = FULL_CASES
    cases = [{"workload": w, "dtype": d, "size": s} for w, d, s in raw_cases if w in workloads]
    depths = depths if "derive" in workloads else ()
    if not args.quick and all(c["size"] < GEMM_FRACTION_BATCH for c in cases):
        libraries = []  # no row to set against the GEMM rate: its jobs would only load the machine between the rows'

    with tempfile.TemporaryDirectory(prefix="symprop-bench-") as tmp:
        modules, outputs = Path(tmp, "modules"), Path(tmp, "outputs")
        modules.mkdir()
        outputs.mkdir()
        write_modules(modules, sorted({c["workload"] for c in cases}))
        jobs = plan(cases, depths, variants, rounds, timing, str(modules), str(outputs), args.quick, libraries)
        print(f"{len(jobs)} jobs: {rounds} round(s), variants {', '.join(variants)}{no_jax}", file=sys.stderr)
        results = run_jobs(jobs, parallel, timeout, thread_env(threads))
        gemm_rows, gemm_best = gemm_limits(results)
        rows, failures = summarize(results, cases, variants, outputs, gemm_best)
    failures += [{"job": describe(r["spec"]), "error": r["error"]} for r in results
                 if r["spec"]["kind"] != "variant" and "error" in r]
    derive_rows = summarize_derive(results, depths)

    print_tables(rows, derive_rows, gemm_rows, gemm_best)
    loads = [r["spec"]["load_before"] for r in results]
    print(f"\nmachine load (1-minute load average as each job started, {os.cpu_count()} cores): "
          f"mean {statistics.mean(loads):.2f}, max {max(loads):.2f}; each job itself adds about 1 to 2")
    elapsed = time.perf_counter() - started
    recorded = {r["variant"]: r["threads"] for r in results if "threads" in r and "variant" in r}
    recorded.update({f"gemm-{r['spec']['library']}": r["threads"] for r in results
                     if "threads" in r and r["spec"]["kind"] == "gemm"})
    report = {"quick": args.quick, "rounds": rounds, "timing": timing, "variants": variants, "jax": has_jax,
              "versions": versions(), "threads_setting": threads or "library defaults", "threads": recorded,
              "elapsed_s": elapsed, "load_average": {"mean": statistics.mean(loads), "max": max(loads)},
              "memory_methods": MEMORY_METHODS, "tolerance": TOLERANCE,
              "gemm": gemm_rows, "gemm_limit_flops": gemm_best, "rows": rows, "derive": derive_rows,
              "failures": failures}
    if args.json is not None or not args.quick:
        path = args.json or default_json
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {path}")
    print(f"finished in {elapsed:.1f} s")
    if failures:
        print(f"\n{len(failures)} failure(s):", file=sys.stderr)
        for f in failures:
            print(f"  {f['job']}: {f['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog=os.environ.get("SYMPROP_BENCH_PROG")))
