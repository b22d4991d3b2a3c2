"""The `symprop` command line."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
from pathlib import Path

import click
import sympy as sp

from . import __version__
from .errors import SymPropError

TARGETS = ("numpy", "torch", "latex")
AVAILABLE = ("numpy", "torch")
EXAMPLES = """
\b
Examples:
  symprop derive examples/seed_neuron.toml            # write generated/seed_neuron_{numpy,torch}.py
  symprop derive --expr "(a(w*x) - t)**2" --wrt w     # the textbook chain rule, printed
  symprop check examples/iris_mlp.toml                # compare with torch.autograd
  symprop list-ops                                    # what a spec may use
"""


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SymPropError as error:  # bad input: one line, exit 2, no traceback
            click.echo(f"symprop: error: {error}", err=True)
            ctx.exit(2)


@click.group(cls=Group, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symprop")
def main():
    """Derive closed-form gradients of a network's loss with SymPy, and emit them as
    NumPy and PyTorch code that is checked against torch.autograd."""


def load_model(source: str):
    """A model from a TOML spec, or from `package.module:attribute`."""
    from .declare.model import Model
    from .declare.spec import load

    if source.endswith(".toml") or Path(source).exists():
        return load(source)
    if ":" not in source:
        raise SymPropError("expected a .toml spec or package.module:attribute", source)
    module_name, _, attribute = source.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SymPropError(f"cannot import {module_name}: {error}", source) from None
    model = getattr(module, attribute, None)
    if not isinstance(model, Model):
        raise SymPropError(f"{attribute} is not a symprop Model", source)
    if not model.source:
        model.source = source
    return model


@main.command(epilog=EXAMPLES)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--expr", help="Scalar mode: an expression to differentiate, e.g. \"(a(w*x) - t)**2\".")
@click.option("--wrt", multiple=True, help="Scalar mode: a name to differentiate with respect to (repeatable).")
@click.option("--target", "targets", multiple=True, type=click.Choice(TARGETS),
              help="What to write (repeatable). Default: numpy and torch; latex is not yet available.")
@click.option("--out", "out_dir", default=None, help="Output folder.  [default: generated]")
@click.option("--force", is_flag=True, help="Overwrite files that symprop did not write.")
def derive(sources, expr, wrt, targets, out_dir, force):
    """Derive each SOURCE (a TOML spec or package.module:attribute) and write its gradient code."""
    if expr is not None:
        if sources:
            raise click.UsageError("give either SOURCE or --expr, not both")
        return _derive_scalar(expr, wrt, out_dir, force)
    if not sources:
        raise click.UsageError("missing SOURCE (a .toml spec or package.module:attribute), or --expr")
    if wrt:
        raise click.UsageError("--wrt goes with --expr")
    from .derivation import Derivation

    chosen = targets or AVAILABLE
    if "latex" in chosen:
        raise SymPropError("the latex target is not yet available", "--target")
    derivations = [(source, Derivation(load_model(source))) for source in sources]  # all or nothing
    out = Path(out_dir or "generated")
    for source, derivation in derivations:
        command = f"symprop derive {source}" + (f" --out {out_dir}" if out_dir else "")
        written = derivation.write(out, chosen, source=source, command=command, force=force)
        click.echo("wrote " + ", ".join(map(str, written)))
        click.echo(f"  {derivation.summary()}")
        for line in derivation.backward_lines():
            click.echo(f"    {line}")


def _derive_scalar(expr, wrt, out_dir, force):
    from .scalar import derive as derive_scalar

    if not wrt:
        raise click.UsageError("--expr needs at least one --wrt NAME")
    results = derive_scalar(expr, list(wrt))
    for name, result in results.items():
        click.echo(f"d/d{name} {expr} =\n  {_prime_notation(result)}")
    if out_dir:
        raise SymPropError("writing files from --expr comes with the latex target, which is not yet available",
                           "--out")


def _prime_notation(expr: sp.Expr) -> str:
    """sympy's Subs(Derivative(a(ξ), ξ), ξ, w*x) written as a'(w*x)."""
    def prime(subs):
        derivative, (variable,), (point,) = subs.args
        if isinstance(derivative, sp.Derivative) and len(derivative.variables) == 1:
            (function,) = [f for f in derivative.atoms(sp.Function) if variable in f.args]
            return sp.Function(f"{function.func.__name__}'")(point)
        return subs

    shown = expr.replace(lambda e: isinstance(e, sp.Subs), prime)
    shown = shown.replace(lambda e: isinstance(e, sp.Derivative) and len(e.variables) == 1
                          and isinstance(e.expr, sp.Function) and e.expr.args == e.variables,
                          lambda e: sp.Function(f"{e.expr.func.__name__}'")(*e.variables))
    return sp.sstr(shown)


@main.command(epilog=EXAMPLES)
@click.argument("source")
@click.option("--out", "out_dir", default="generated", show_default=True,
              help="Folder holding the generated modules to check.")
def check(source, out_dir):
    """Run the generated modules of SOURCE against torch.autograd (float64, several seeds and batches)."""
    from .check import compare

    try:
        import torch  # noqa: F401
    except ImportError:
        raise SymPropError("checking needs PyTorch: pip install -c constraints.txt 'symprop[torch]'") from None
    model = load_model(source)
    modules = {}
    with tempfile.TemporaryDirectory() as scratch:
        for target in ("numpy", "torch"):
            path = Path(out_dir) / f"{model.name}_{target}.py"
            if not path.exists():
                from .derivation import Derivation

                click.echo(f"{path} does not exist; checking freshly derived code instead", err=True)
                path = Path(scratch) / path.name
                path.write_text(Derivation(model).render(target, source), encoding="utf-8")
            modules[target] = _import(path)
        rows = compare(model, modules["numpy"], modules["torch"], seeds=(0, 1, 2), batches=(1, 5, 64))
    width = max(len(r.name) for r in rows)
    click.echo(f"{'parameter':<{width}}  max rel. error  ok")
    for row in rows:
        click.echo(f"{row.name:<{width}}  {row.error:14.2e}  {'yes' if row.passed else 'NO'}")
    failed = [r.name for r in rows if not r.passed]
    if failed:
        click.echo(f"FAILED: {', '.join(failed)} disagree with torch.autograd beyond 1e-10", err=True)
        sys.exit(1)
    click.echo(f"all {len(rows)} agree with torch.autograd to 1e-10")


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"_symprop_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise SymPropError(f"cannot import: {type(error).__name__}: {error}", str(path)) from None
    return module


@main.command("list-ops")
def list_ops():
    """List the layers, losses and expression names a spec accepts."""
    from .declare.model import LAYER_TYPES, LOSS_TYPES
    from .declare.parse import CONSTANTS, FUNCTIONS

    click.echo("layers:      " + ", ".join(LAYER_TYPES))
    click.echo("losses:      " + ", ".join(LOSS_TYPES))
    click.echo("reductions:  mean, sum (kl_div also batchmean)")
    click.echo("targets:     cross_entropy: index | probs; nll: index; others: the output's shape")
    click.echo("expressions: " + ", ".join(sorted(FUNCTIONS, key=str.lower)) + "; constants: "
               + ", ".join(CONSTANTS) + "; operators: + - * / **")
