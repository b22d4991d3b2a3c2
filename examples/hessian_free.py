"""Hessian-free training of examples/iris_mlp.toml: each step solves (G + λI) d = −g by conjugate gradient, G the
generalized Gauss–Newton matrix, read only through the generated NumPy module's ggn_vp; beside it, full-batch Adam
through the same module's adam_step, from the same initial parameters. Both are printed step by step.

  .venv/bin/python examples/hessian_free.py                    # 30 steps of each
  .venv/bin/python examples/hessian_free.py --steps 10 --cg 20
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import numpy as np

import symprop as S
from symprop.train import prepare_csv

HERE = Path(__file__).resolve().parent


def generated_numpy(model):
    """The model's generated NumPy module with its second-order products, written to a scratch folder and imported."""
    folder = Path(tempfile.mkdtemp())
    S.derive_network(model, hvp=True).write(folder, ["numpy"])
    path = folder / f"{model.name}_numpy.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flat(tree: dict, keys) -> np.ndarray:
    return np.concatenate([tree[k].reshape(-1) for k in keys])


def unflat(vector: np.ndarray, shapes: dict) -> dict:
    out, start = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape))
        out[key] = vector[start:start + size].reshape(shape)
        start += size
    return out


def conjugate_gradient(product, b: np.ndarray, iterations: int) -> np.ndarray:
    """x with product(x) ≈ b, product symmetric positive definite."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(iterations):
        ap = product(p)
        alpha = rr / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        new = r @ r
        if new < 1e-30:
            break
        p, rr = r + (new / rr) * p, new
    return x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cg", type=int, default=10, help="conjugate-gradient iterations per step")
    parser.add_argument("--damping", type=float, default=1e-3, help="λ, added to G's diagonal")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    args = parser.parse_args(argv)

    model = S.load_spec(HERE / "iris_mlp.toml")
    module = generated_numpy(model)
    data = prepare_csv(HERE / "data" / "iris.csv", model, (), holdout=0.2, seed=0, standardize=True)
    x, t = data.inputs[0], data.t
    shapes = module.PARAM_SHAPES
    hf = adam = module.init_params(0)
    state = None
    print(f"{'step':>4s}  {'Hessian-free loss':>18s}  {'Adam loss':>10s}")
    for step in range(args.steps + 1):
        loss_hf, grads = module.loss_and_gradients(hf, x, t)
        loss_adam = module.loss(adam, x, t)
        print(f"{step:4d}  {loss_hf:18.6f}  {loss_adam:10.6f}")
        if step == args.steps:
            break

        def curvature(vector, at=hf):
            gv = module.ggn_vp(at, x, t, unflat(vector, shapes))[1]
            return flat(gv, shapes) + args.damping * vector

        move = conjugate_gradient(curvature, -flat(grads, shapes), args.cg)
        hf = {k: hf[k] + d for k, d in unflat(move, shapes).items()}
        adam, _, state = module.adam_step(adam, x, t, lr=args.lr, state=state)
    held = {"Hessian-free": hf, "Adam": adam}
    for name, params in held.items():
        accuracy = (module.forward(params, data.held_inputs[0]).argmax(axis=1) == data.held_t).mean()
        print(f"{name}: held-out accuracy {accuracy:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
