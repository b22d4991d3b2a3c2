"""How long the largest spec symprop accepts takes to derive: the 10 s promise, measured.

The spec sits at the limits: 128 layers (64 blocks of Linear(8, 8) and a custom activation
built from tanh, sigmoid and log(1 + exp)), cross-entropy at the end. Each round runs in a fresh
process and times derive (derive + simplify + schedule), then the rendering of each target.

Run:  python benchmarks/derive_limits.py [--rounds 3]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

ACTIVATION = "tanh(z)*sigmoid(z) + log(1 + exp(z))"


def worker() -> dict:
    import symprop as S
    from symprop.declare.model import MAX_LAYERS

    layers = []
    while len(layers) + 3 <= MAX_LAYERS:
        layers += [S.Linear(8, 8), S.Elementwise(ACTIVATION)]
    layers.append(S.Linear(8, 3))
    model = S.Model(S.Sequential(*layers), S.CrossEntropyLoss(), inputs=8, name="limits")
    start = time.perf_counter()
    derivation = S.derive_network(model)
    times = {"layers": len(layers), "derive": time.perf_counter() - start}
    for target in ("numpy", "torch", "latex"):
        start = time.perf_counter()
        derivation.render(target)
        times[target] = time.perf_counter() - start
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker()))
        return
    runs = []
    for _ in range(args.rounds):
        out = subprocess.run([sys.executable, __file__, "--worker"], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ["derive", "numpy", "torch", "latex"]
    medians = {k: statistics.median(r[k] for r in runs) for k in keys}
    print(f"{runs[0]['layers']} layers, activation {ACTIVATION}, median of {len(runs)} fresh processes:")
    for key in keys:
        print(f"  {key:7s} {medians[key]:6.2f} s")
    print(f"  total   {sum(medians.values()):6.2f} s")


if __name__ == "__main__":
    main()
