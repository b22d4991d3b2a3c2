"""Hessian-vector products on the CPU: the generated modules' hvp against the module's own loss_and_gradients and
against torch's ways of computing the same product.

Workloads (float32, cross-entropy):
  mlp          784-256-128-10 with ReLU, batch 256 (read by from_torch, torch.fx);
  transformer  nn.TransformerEncoderLayer(64, 4, 256) over 32 positions, mean-pooled, Linear(64, 10), batch 16
               (read by from_torch, torch.export).
Variants:
  numpy hvp, torch hvp            the generated modules' hvp(params, x, t, v);
  numpy gradients, torch gradients  the generated modules' loss_and_gradients (the ratio hvp / gradients, each
                                  backend's own);
  torch.func jvp(grad)            torch.func.jvp(torch.func.grad(loss), (params,), (v,)), eager (forward over
                                  reverse, as torch.func computes an HVP);
  autograd double backward        torch.autograd.grad of (grad · v), create_graph=True (reverse over reverse).
Attention runs torch's math kernel in the torch variants: its fused one has neither a forward-mode rule nor a double
backward. Each variant runs in its own process (NumPy's and torch's thread pools never share one), the variants
alternate round by round, and each reports the median of its calls; the table gives the median over rounds, and the
peak memory of one call (the first round's; NumPy's by tracemalloc, torch's as torch.profiler reports allocations).

Run (from the project root):
  .venv/bin/python benchmarks/hvp.py                       # writes benchmarks/results/hvp.json
  .venv/bin/python benchmarks/hvp.py --rounds 1 --quick    # a check that every variant runs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
VARIANTS = ("numpy hvp", "numpy gradients", "torch hvp", "torch gradients", "torch.func jvp(grad)",
            "autograd double backward")


def network(workload: str):
    """(torch module, example input, example target), float32, seeded."""
    import torch

    torch.manual_seed(0)
    if workload == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                  torch.nn.ReLU(), torch.nn.Linear(128, 10))
        return net, torch.randn(256, 784), torch.randint(0, 10, (256,))

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.layer(x).mean(1))

    return Encoder(), torch.randn(16, 32, 64), torch.randint(0, 10, (16,))


def derive(workload: str, folder: Path) -> None:
    """The workload's generated modules, with hvp, into `folder`."""
    import torch

    sys.path.insert(0, str(ROOT))
    import symprop as S

    net, x, t = network(workload)
    loss = torch.nn.CrossEntropyLoss()
    model = S.from_torch(net, loss, inputs=784, name=workload) if workload == "mlp" else \
        S.from_torch(net, loss, example_inputs=(x,), example_target=t, name=workload)
    S.derive_network(model, hvp=True).write(folder, ("numpy", "torch"), source=f"benchmarks/hvp.py {workload}",
                                             command="benchmarks/hvp.py")


def worker(workload: str, variant: str, folder: Path, calls: int) -> tuple[float, int]:
    """The median time of one call of `variant`, in ms, and its peak memory in bytes (run.py's measures: NumPy's by
    tracemalloc, torch's by the allocations torch.profiler reports)."""
    import numpy as np
    import torch
    from run import raise_heap_threshold
    from torch.func import functional_call
    from torch.nn.attention import SDPBackend, sdpa_kernel

    raise_heap_threshold()  # as the generated modules do at import, for every variant
    net, x, t = network(workload)
    params = {k: p.detach() for k, p in net.named_parameters()}
    generator = torch.Generator().manual_seed(1)
    v = {k: torch.randn(p.shape, generator=generator) for k, p in params.items()}
    loss = torch.nn.CrossEntropyLoss()
    if variant in ("numpy hvp", "numpy gradients", "torch hvp", "torch gradients"):
        backend = variant.split()[0]
        spec = importlib.util.spec_from_file_location("m", folder / f"{workload}_{backend}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if variant == "numpy hvp":
            arrays = ({k: p.numpy() for k, p in params.items()}, x.numpy(), t.numpy(),
                      {k: d.numpy() for k, d in v.items()})
            run = lambda: module.hvp(*arrays)  # noqa: E731
        elif variant == "numpy gradients":
            arrays = ({k: p.numpy() for k, p in params.items()}, x.numpy(), t.numpy())
            run = lambda: module.loss_and_gradients(*arrays)  # noqa: E731
        elif variant == "torch hvp":
            run = lambda: module.hvp(params, x, t, v)  # noqa: E731
        else:
            run = lambda: module.loss_and_gradients(params, x, t)  # noqa: E731
    else:
        def f(values):
            return loss(functional_call(net, values, (x,)), t)

        if variant == "torch.func jvp(grad)":
            run = lambda: torch.func.jvp(torch.func.grad(f), (params,), (v,))  # noqa: E731
        else:
            leaves = {k: p.clone().requires_grad_(True) for k, p in params.items()}

            def run():
                grads = torch.autograd.grad(f(leaves), list(leaves.values()), create_graph=True)
                inner = sum((g * v[k]).sum() for g, k in zip(grads, leaves, strict=True))
                return torch.autograd.grad(inner, list(leaves.values()))

    with sdpa_kernel(SDPBackend.MATH), torch.no_grad() if variant.endswith(("hvp", "gradients")) else _nothing():
        for _ in range(3):
            run()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        sys.path.insert(0, str(HERE.parent))
        from run import peak_numpy, peak_torch

        peak = (peak_numpy if variant.startswith("numpy") else peak_torch)(run)
    return 1e3 * float(np.median(times)), peak


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few calls each: checks that every variant runs")
    parser.add_argument("--json", type=Path, default=HERE.parent / "results" / "hvp.json")
    parser.add_argument("--worker", nargs=4, metavar=("WORKLOAD", "VARIANT", "FOLDER", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        workload, variant, folder, calls = args.worker
        print(*worker(workload, variant, Path(folder), int(calls)))
        return
    calls = 3 if args.quick else 30
    results, memory = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for workload in ("mlp", "transformer"):
            derive(workload, Path(folder))
            times, peaks = {variant: [] for variant in VARIANTS}, {}
            for round_ in range(args.rounds):
                order = VARIANTS[round_ % len(VARIANTS):] + VARIANTS[:round_ % len(VARIANTS)]
                for variant in order:
                    done = subprocess.run([sys.executable, str(HERE), "--worker", workload, variant, folder,
                                           str(calls)], capture_output=True, text=True, check=True)
                    milliseconds, peak = done.stdout.split()[-2:]
                    times[variant].append(float(milliseconds))
                    peaks.setdefault(variant, int(peak))  # the first round's, as run.py reports
                    print(f"{workload:12s} round {round_ + 1}: {variant:26s} {times[variant][-1]:9.3f} ms",
                          file=sys.stderr)
            results[workload] = {variant: statistics.median(values) for variant, values in times.items()}
            memory[workload] = peaks
    print(f"\n{'workload':12s} {'variant':26s} {'median ms':>10s} {'x torch.func':>13s} {'x gradients':>12s} "
          f"{'peak MiB':>9s}")
    print("(x gradients: against the same backend's loss_and_gradients; torch's for torch.func and autograd)")
    for workload, medians in results.items():
        for variant, median in medians.items():
            own = medians["numpy gradients" if variant.startswith("numpy") else "torch gradients"]
            print(f"{workload:12s} {variant:26s} {median:10.3f} {median / medians['torch.func jvp(grad)']:13.2f} "
                  f"{median / own:12.2f} {memory[workload][variant] / 2**20:9.2f}")
    if not args.quick:
        import platform

        import torch

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": args.rounds, "calls": calls, "dtype": "float32",
                                         "torch": torch.__version__, "platform": platform.platform(),
                                         "median_ms": results, "peak_bytes": memory}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
