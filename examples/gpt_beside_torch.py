"""examples/gpt.py trained twice from the same initial parameters on the same batches of the same text: by torch
(autograd and torch.optim.Adam) and by symprop's generated NumPy module (its closed-form gradients and its adam_step),
both in float64. Prints both losses every 100 steps and the largest difference between them; draws both curves.

  .venv/bin/python examples/gpt_beside_torch.py                      # 600 steps; writes docs/gpt_loss.png
  .venv/bin/python examples/gpt_beside_torch.py --steps 50 --plot /tmp/gpt_loss.png
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import symprop as S
from symprop.train import prepare_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gpt import build  # noqa: E402  (examples/ is not a package)


def generated_numpy(model):
    """The model's generated NumPy module, written to a scratch folder and imported."""
    folder = Path(tempfile.mkdtemp())
    S.derive_network(model).write(folder, ["numpy"])
    path = folder / f"{model.name}_numpy.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--text", default=str(HERE / "data" / "constitution.txt"))
    parser.add_argument("--plot", default=str(HERE.parent / "docs" / "gpt_loss.png"))
    args = parser.parse_args(argv)

    net, loss, example_inputs = build()
    model = S.from_torch(net, loss, example_inputs=example_inputs, name="gpt")
    module = generated_numpy(model)
    data = prepare_text(Path(args.text), model, holdout=0.0)
    (x,), t = data.inputs, data.t
    batches = np.random.default_rng(0).integers(0, len(x), size=(args.steps, args.batch_size))

    net = net.double()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    params, state = model.source_params(), None  # the same start: the module's own initialization, in float64
    ours, theirs, seconds = [], [], {"symprop (NumPy)": 0.0, "torch": 0.0}
    for step, rows in enumerate(batches, 1):
        start = time.perf_counter()
        params, value, state = module.adam_step(params, x[rows], t[rows], lr=args.lr, state=state)
        seconds["symprop (NumPy)"] += time.perf_counter() - start
        start = time.perf_counter()
        optimizer.zero_grad()
        reference = net(torch.from_numpy(x[rows]), torch.from_numpy(t[rows]))[1]
        reference.backward()
        optimizer.step()
        seconds["torch"] += time.perf_counter() - start
        ours.append(float(value))
        theirs.append(reference.item())
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:5d}   symprop {ours[-1]:.6f}   torch {theirs[-1]:.6f}")
    gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(f"largest difference between the two losses over {args.steps} steps: {gap:.2e}")
    print("time per step: " + ", ".join(f"{name} {1e3 * s / args.steps:.1f} ms" for name, s in seconds.items()))
    draw(ours, theirs, Path(args.plot), args)
    return 0


def draw(ours, theirs, path: Path, args) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'symprop[plot]')")
        return
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    steps = range(1, len(ours) + 1)
    axes.plot(steps, theirs, color="#ff7f0e", linewidth=3, alpha=0.6, label="torch: autograd + torch.optim.Adam")
    axes.plot(steps, ours, color="#1f77b4", linewidth=1, label="symprop: generated NumPy module + adam_step")
    axes.set_xlabel(f"step (batches of {args.batch_size} windows of 16 characters)")
    axes.set_ylabel("cross-entropy per character")
    axes.set_title(f"examples/gpt.py on constitution.txt, Adam lr {args.lr:g}, float64")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
