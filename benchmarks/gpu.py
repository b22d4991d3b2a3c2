"""The GPU benchmark: symprop's generated torch module against torch.autograd on one CUDA device.

What it measures, on each workload: the time of one call that returns the loss and every parameter's gradient,
and the peak memory of that call, for
  torch             the generated torch module's loss_and_gradients, eager
  torch+compile     the same under torch.compile
  autograd          the same network in torch.nn, loss.backward(), grads read
  autograd+compile  the same, the loss function compiled
Workloads (float32, TF32 off; each also checked in float64):
  mlp        Linear(784,256) ReLU Linear(256,128) ReLU Linear(128,10), cross-entropy, batch 8192
  wide_gelu  Linear(1024,4096) GELU Linear(4096,4096) GELU Linear(4096,1000), cross-entropy, batch 4096
  encoder    2 x TransformerEncoderLayer(256, 8 heads, ff 1024, GELU, norm_first), seq 128, mean over the
             sequence, Linear(256,10), cross-entropy, batch 32
  char_lm    examples/char_lm.toml, batch 256 windows of 32 characters

Method: one process; rounds round-robin over the variants, each round timing --repeats calls with CUDA events
(after a warm-up; compiled variants warm up longer); the median over every call. Peak memory: one call's
torch.cuda.max_memory_allocated above what was allocated before it (the returned gradients included).
Agreement: each variant against eager autograd, in float32 (relative 1e-4) and float64 (1e-10).

Run (from the project root, where a GPU is):
  PYTHONPATH=. python benchmarks/run.py --device cuda       # writes benchmarks/results/gpu.json ($OUT if set)
  python benchmarks/gpu.py --device cpu --quick              # tiny sizes, on the CPU: checks that it all runs
  python benchmarks/gpu.py --device cpu --batch mlp=2048,wide_gelu=256,encoder=8,char_lm=64   # the shapes, smaller
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as cpu  # noqa: E402  (the CPU benchmark's networks, data and torch twins)

WORKLOADS = {  # name: (network, batch, quick batch)
    "mlp": ({"inputs": 784, "loss": "cross_entropy", "classes": 10,
             "layers": [("linear", 256, True), ("relu",), ("linear", 128, True), ("relu",), ("linear", 10, True)]},
            8192, 16),
    "wide_gelu": ({"inputs": 1024, "loss": "cross_entropy", "classes": 1000,
                   "layers": [("linear", 4096, True), ("gelu",), ("linear", 4096, True), ("gelu",),
                              ("linear", 1000, True)]}, 4096, 4),
    "encoder": ({"inputs": 256, "sequence": 128, "loss": "cross_entropy", "classes": 10,
                 "layers": [("transformer", 8, 1024, "gelu", True)] * 2 + [("mean_pool",), ("linear", 10, True)]},
                32, 2),
    "char_lm": (cpu.NETWORKS["char_lm"], 256, 2),
}
VARIANTS = ("torch", "torch+compile", "autograd", "autograd+compile")
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def generated_module(name: str, net: dict, folder: Path):
    import symprop as S

    path = folder / f"gpu_{name}_torch.py"
    path.write_text(S.derive_network(cpu.symprop_model(net, f"gpu_{name}")).render("torch"))
    return cpu.import_path(path)


def variant_call(variant: str, module, net: dict, params: dict, x, t, device: str):
    """A call() -> (loss, {key: gradient}) of a variant on the data, on the device."""
    import torch

    tx, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    if variant.startswith("torch"):
        tp = {k: torch.from_numpy(v).to(device) for k, v in params.items()}
        fn = torch.compile(module.loss_and_gradients) if variant.endswith("compile") else module.loss_and_gradients
        return lambda: fn(tp, tx, tt)
    dtype = str(x.dtype) if x.dtype.kind == "f" else str(next(iter(params.values())).dtype)
    model, loss_fn = cpu.torch_char_lm(params, dtype) if "spec" in net else cpu.torch_network(net, params, dtype)
    model = model.to(device)
    if hasattr(model, "mask"):
        model.mask = model.mask.to(device)
    return cpu.autograd_call(model, loss_fn, tx, tt, variant.endswith("compile"))


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(call, repeats: int, device: str) -> list[float]:
    """Seconds per call: CUDA events on the GPU, the wall clock on the CPU."""
    import torch

    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return times


def peak_bytes(call, device: str) -> int:
    import torch

    if device != "cuda":
        return cpu.peak_torch(call)
    synchronize(device)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = call()
    synchronize(device)
    del out
    return torch.cuda.max_memory_allocated() - before


def relative_error(mine, reference) -> float:
    (loss, grads), (ref_loss, ref_grads) = mine, reference
    pairs = [(loss, ref_loss)] + [(grads[k], ref_grads[k]) for k in ref_grads]
    worst = 0.0
    for a, b in pairs:
        a, b = a.detach().double().cpu(), b.detach().double().cpu()
        worst = max(worst, float((a - b).abs().max() / max(float(b.abs().max()), 1e-300)))
    return worst


def measure(name: str, args, folder: Path) -> list[dict]:
    net, batch, quick_batch = WORKLOADS[name]
    batch = args.batch.get(name, quick_batch if args.quick else batch)
    module = generated_module(name, net, folder)
    rows = []
    for dtype in ("float64", "float32"):  # float64: agreement only; float32: agreement, time and memory
        params, x, t = cpu.make_data(net, dtype, batch)
        variants = [v for v in args.variants if dtype == "float32" or not v.endswith("compile")]
        calls = {v: variant_call(v, module, net, params, x, t, args.device) for v in variants}
        reference = calls["autograd"]()
        errors = {v: relative_error(calls[v](), reference) for v in variants}
        if dtype == "float64":
            rows += [{"workload": name, "dtype": dtype, "batch": batch, "variant": v, "rel_error": errors[v],
                      "agrees": errors[v] <= TOLERANCE[dtype]} for v in variants]
            continue
        for v in variants:
            for _ in range(args.warmup * (3 if v.endswith("compile") else 1)):
                calls[v]()
            synchronize(args.device)
        times = {v: [] for v in variants}
        for round_ in range(args.rounds):
            for v in variants[round_ % len(variants):] + variants[:round_ % len(variants)]:
                times[v] += time_calls(calls[v], args.repeats, args.device)
        base = statistics.median(times["autograd"])
        for v in variants:
            median = statistics.median(times[v])
            rows.append({"workload": name, "dtype": dtype, "batch": batch, "variant": v,
                         "median_ms": 1e3 * median, "min_ms": 1e3 * min(times[v]), "ratio_to_autograd": median / base,
                         "peak_bytes": peak_bytes(calls[v], args.device), "rel_error": errors[v],
                         "agrees": errors[v] <= TOLERANCE[dtype]})
        print(f"{name}: done", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: checks that everything runs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls a variant gets each round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", default="", help="batch sizes other than the workloads': mlp=2048,encoder=8 "
                                                    "(to see the GPU shapes' memory on a CPU)")
    parser.add_argument("--json", default=None, help="results file (default: $OUT/gpu.json where $OUT is set, "
                                                     "else benchmarks/results/gpu.json)")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    args.batch = {name: int(size) for name, size in (pair.split("=") for pair in args.batch.split(",") if pair)}
    if "autograd" not in args.variants:
        args.variants.append("autograd")  # the reference of every ratio and every agreement
    if args.quick:
        args.rounds, args.repeats, args.warmup = 1, 2, 1
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here (use --device cpu to try the script)", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for name in args.workloads.split(",") for row in measure(name, args, Path(folder))]
    result = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "date": datetime.date.today().isoformat(), "torch": torch.__version__, "tf32": False,
        "quick": args.quick, "rounds": args.rounds, "repeats": args.repeats, "elapsed_s": time.time() - start,
        "batches": {name: args.batch.get(name, WORKLOADS[name][2 if args.quick else 1])
                    for name in args.workloads.split(",")},
        "rows": rows,
    }
    print(f"{'workload':10} {'variant':17} {'median ms':>10} {'x autograd':>10} {'peak MiB':>9} {'rel err':>8}")
    for r in rows:
        if "median_ms" in r:
            print(f"{r['workload']:10} {r['variant']:17} {r['median_ms']:10.3f} {r['ratio_to_autograd']:10.2f} "
                  f"{r['peak_bytes'] / 2**20:9.1f} {r['rel_error']:8.1e}")
    out = Path(args.json) if args.json else Path(os.environ["OUT"]) / "gpu.json" if os.environ.get("OUT") else \
        HERE / "results" / "gpu.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    failed = [r for r in rows if not r["agrees"]]
    for r in failed:
        print(f"DISAGREES: {r['workload']} {r['dtype']} {r['variant']}: {r['rel_error']:.1e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
