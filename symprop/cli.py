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
from .backends import BACKENDS, default_targets
from .errors import SymPropError

TARGETS = tuple(BACKENDS)
EXAMPLES = """
\b
Examples:
  symprop derive examples/seed_neuron.toml            # generated/seed_neuron_{numpy,torch}.py and .tex
  symprop derive examples/seed_neuron.toml --pdf      # ... and the derivation as a PDF
  symprop derive models.py:model                      # a Model declared in Python (or made by from_torch)
  symprop derive --expr "(a(w*x) - t)**2" --wrt w     # the textbook chain rule, printed
  symprop train examples/char_lm.toml --text examples/data/constitution.txt --optimizer adam
  symprop sample examples/char_lm.toml --prompt "We the People"
  symprop check examples/iris_mlp.toml                # compare with torch.autograd
  symprop list-ops                                    # what a spec may use
"""


DERIVE_EXAMPLES = """
\b
Examples:
  symprop derive examples/iris_mlp.toml               # generated/iris_mlp_{numpy,torch}.py and iris_mlp.tex
  symprop derive examples/*.toml --out build          # every example, into build/
  symprop derive models.py:model --target numpy       # a Model declared in Python, NumPy only
  symprop derive examples/gpt.py:build                # build() returns (torch module, loss, example inputs[,
                                                      #   example target]): exported by torch.export, as written
  symprop derive examples/lenet.py:build              # LeNet-5: convolutions and pooling, in index notation
  symprop derive examples/seed_neuron.toml --pdf      # ... and the derivation as a PDF (needs pdflatex)
  symprop derive examples/iris_mlp.toml --target html # the derivation beside its code, linked, in a browser
  symprop derive examples/binary_classifier.toml --hvp  # ... and hvp(params, x, t, v): the Hessian times v
  symprop derive --expr "(a(w*x) - t)**2" --wrt w     # the textbook chain rule, printed
"""
CHECK_EXAMPLES = """
\b
Examples:
  symprop check examples/iris_mlp.toml                # generated/iris_mlp_*.py against torch.autograd
  symprop check models.py:model --out build           # the modules in build/
  symprop check examples/gpt.py:build                 # a GPT written as nanoGPT writes one, from torch
  symprop check examples/digits_cnn.toml              # a CNN with batch norm, from a TOML spec
  symprop check examples/iris_mlp.toml --out build    # derived with --hvp into build/: its hvp is checked too
"""
LIST_EXAMPLES = """
\b
Examples:
  symprop list-ops
  symprop list-ops | grep loss
"""


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SymPropError as error:  # bad input: one line, exit 2, no traceback
            click.echo(f"symprop: error: {error}", err=True)
            ctx.exit(2)
        except click.UsageError as error:  # a command's usage: one line too, where click prints four
            command = error.ctx.command_path if error.ctx is not None else "symprop"
            click.echo(f"{command}: error: {error.format_message()} (see {command} --help)", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:  # Ctrl-C: the shell's convention, 128 + SIGINT
            click.echo("symprop: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # the reader went away (symprop ... | head): nothing more to say
            _silence_stdout()
            ctx.exit(0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's runner)
        pass


@click.group(cls=Group, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symprop")
def main():
    """Derive closed-form gradients of a network's loss with SymPy, and emit them as
    NumPy and PyTorch code that is checked against torch.autograd."""


def load_model(source: str):
    """A model from a TOML spec, from `path/to/models.py:attribute`, or from `package.module:attribute` (the
    current folder is on the import path, as for `python -m`)."""
    from .declare.model import Model
    from .declare.spec import load

    path, colon, attribute = source.rpartition(":") if ":" in source else (source, "", "")
    if not colon and (source.endswith(".py") or Path(source).suffix == ".py"):
        raise SymPropError(f"name the model in the file: {source}:model (the Model object's name)", source)
    if not colon:
        if source.endswith(".toml") or Path(source).exists():
            return load(source)
        raise SymPropError("expected a .toml spec, path/to/file.py:model or package.module:model", source)
    if not attribute.isidentifier():
        raise SymPropError(f"{attribute!r} is not a Python name", source)
    module = _import_python(path, source)
    model = getattr(module, attribute, None)
    if callable(model) and not isinstance(model, Model) and not isinstance(model, type):
        model = _from_factory(model, attribute, source)
    if not isinstance(model, Model):
        found = "there is no such name" if model is None else f"it is a {type(model).__name__}"
        raise SymPropError(f"{attribute} is not a symprop Model ({found}); make one with symprop.Model(...) or "
                           "symprop.from_torch(...), or name a function that returns (module, loss, "
                           "example_inputs[, example_target])", source)
    if not model.source:
        model.source = source
    return model


def _from_factory(factory, attribute: str, source: str):
    """The Model of a function that returns a torch module, its loss and example inputs (and target), exported."""
    from .declare.from_torch import from_torch

    try:
        made = factory()
    except SymPropError:
        raise
    except Exception as error:  # the user's function failed: one line
        raise SymPropError(f"{type(error).__name__} while calling {attribute}(): {error}", source) from None
    if not isinstance(made, tuple) or len(made) not in (3, 4):
        return made  # not a factory's tuple: load_model says what it is
    module, loss, example_inputs, *target = made
    # gpt.py:build is gpt; another factory of the file is named by both (models.py:small is models_small), so that
    # two factories of one file never write the same files
    stem = Path(source.rpartition(":")[0]).stem if source.rpartition(":")[0].endswith(".py") else ""
    name = (stem if attribute == "build" else f"{stem}_{attribute}") if stem else attribute
    return from_torch(module, loss, example_inputs=example_inputs, example_target=target[0] if target else None,
                      name=name if name.isidentifier() else attribute, source=source)


def _import_python(path: str, source: str):
    """The module at a .py path (its folder on the import path, for its own imports), or by dotted name."""
    if path.endswith(".py") or "/" in path or "\\" in path:
        file = Path(path)
        if not file.is_file():
            raise SymPropError("no such file", path)
        folder = str(file.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(f"_symprop_source_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader.exec_module
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        module, loader = None, None
    try:
        if loader is None:
            return importlib.import_module(path)
        sys.modules[module.__name__] = module  # as `import` does: dataclasses and pickle look a class's module up
        loader(module)
        return module
    except SymPropError as error:
        raise (error if error.where else error.at(source)) from None
    except ImportError as error:
        raise SymPropError(f"cannot import {path}: {error}", source) from None
    except Exception as error:  # the user's module failed while it ran: one line
        raise SymPropError(f"{type(error).__name__} while importing: {error}", source) from None


@main.command(epilog=DERIVE_EXAMPLES, short_help="Derive gradient code and the derivation of a model.")
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--expr", help="Scalar mode: an expression to differentiate, e.g. \"(a(w*x) - t)**2\".")
@click.option("--wrt", multiple=True, help="Scalar mode: a name to differentiate with respect to (repeatable).")
@click.option("--target", "targets", multiple=True, type=click.Choice(TARGETS),
              help="What to write (repeatable). Default: numpy, torch and latex; html is the derivation beside "
                   "its code, linked. --expr writes latex only.")
@click.option("--out", "out_dir", default=None, help="Output folder.  [default: generated]")
@click.option("--pdf", is_flag=True, help="Also compile the LaTeX derivation to NAME.pdf (needs pdflatex).")
@click.option("--name", default="chain_rule", show_default=True, help="--expr: the name of the .tex file.")
@click.option("--force", is_flag=True, help="Overwrite files that symprop did not write.")
@click.option("--hvp", is_flag=True,
              help="Also derive second order: the modules' hvp(params, ..., t, v), hessian(params, ..., t) (up to "
                   "10,000 parameters) and, where the loss reads no parameter, the Gauss-Newton product ggn_vp.")
def derive(sources, expr, wrt, targets, out_dir, pdf, name, force, hvp):
    """Derive each SOURCE (a TOML spec, path/to/models.py:model or package.module:model) and write its code
    and its derivation. With --expr, differentiate one expression and print the result."""
    if expr is not None:
        if sources:
            raise click.UsageError("give either SOURCE or --expr, not both")
        if hvp:
            raise click.UsageError("--hvp goes with a SOURCE (a network), not --expr")
        return _derive_scalar(expr, wrt, targets, out_dir, pdf, name, force)
    if not sources:
        raise click.UsageError("missing SOURCE (a .toml spec, models.py:model or package.module:model), or --expr")
    if wrt:
        raise click.UsageError("--wrt goes with --expr")
    if pdf and targets and "latex" not in targets:
        raise click.UsageError("--pdf compiles the latex target; add --target latex")
    from .derivation import Derivation

    chosen = targets or default_targets()
    derivations = [(source, Derivation(load_model(source), hvp=hvp)) for source in sources]  # all or nothing
    out = Path(out_dir or "generated")
    for source, derivation in derivations:
        command = f"symprop derive {source}" + (f" --out {out_dir}" if out_dir else "") + (" --hvp" if hvp else "")
        written = derivation.write(out, chosen, source=source, command=command, force=force)
        if pdf:
            written += _pdf(out / derivation.filename("latex"), force)
        click.echo("wrote " + ", ".join(map(str, written)))
        for warning in derivation.warnings:
            click.echo(f"symprop: warning: {source}: {warning}", err=True)
        click.echo(f"  {derivation.summary()}")
        for line in derivation.backward_lines():
            click.echo(f"    {line}")


def _pdf(tex: Path, force: bool) -> list[Path]:
    from .files import compile_pdf

    compiled = compile_pdf(tex, force)
    if compiled is None:
        click.echo(f"note: pdflatex is not installed, so {tex.with_suffix('.pdf').name} was not made "
                   "(Debian: apt-get install texlive-latex-base)", err=True)
        return []
    return [compiled]


def _derive_scalar(expr, wrt, targets, out_dir, pdf, name, force):
    from .files import write_all
    from .scalar import chain_rule, prime_notation

    if not wrt:
        raise click.UsageError("--expr needs at least one --wrt NAME")
    if set(targets) - {"latex"}:
        raise click.UsageError("--expr writes only the latex target")
    if not name.isidentifier():
        raise SymPropError(f"must be a Python identifier, got {name!r}", "--name")
    chain = chain_rule(expr, list(wrt))
    for variable, result in chain.gradients.items():
        click.echo(f"d/d{variable} {expr} =\n  {sp.sstr(prime_notation(result))}")
    if out_dir or pdf or targets:
        tex = Path(out_dir or "generated") / f"{name}.tex"
        command = "symprop derive --expr " + _quote(expr) + "".join(f" --wrt {w}" for w in wrt) + \
            (f" --name {name}" if name != "chain_rule" else "") + (f" --out {out_dir}" if out_dir else "")
        written = write_all({tex: chain.to_latex(source="an expression", command=command)}, force=force)
        if pdf:
            written += _pdf(tex, force)
        click.echo("wrote " + ", ".join(map(str, written)))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@main.command(epilog=CHECK_EXAMPLES, short_help="Check generated modules against torch.autograd.")
@click.argument("source")
@click.option("--out", "out_dir", default="generated", show_default=True,
              help="Folder holding the generated modules to check.")
def check(source, out_dir):
    """Run the generated modules of SOURCE against torch.autograd (float64, several seeds and batches)."""
    from .check import compare
    from .declare.torch_eval import require_torch

    require_torch("checking")
    model = load_model(source)
    digest, modules = model.digest(), {}
    for target in (name for name, backend in BACKENDS.items() if backend.runs):
        path = Path(out_dir) / BACKENDS[target].filename.format(name=model.name)
        if path.exists():
            modules[target] = _import(path)
            if getattr(modules[target], "DIGEST", None) != digest:
                raise SymPropError(f"was derived from a different spec; run symprop derive {source}", str(path))
        else:
            click.echo(f"{path} does not exist; checking freshly derived code instead", err=True)
            modules[target] = _fresh_module(model, source, target)
    rows = compare(model, modules, seeds=(0, 1, 2), batches=(1, 5, 64))
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


@main.command("list-ops", epilog=LIST_EXAMPLES, short_help="List what a spec may use.")
def list_ops():
    """List the layers, losses and expression names a spec accepts."""
    from .declare.parse import CONSTANTS
    from .declare.spec import WIRING_KEYS
    from .ops.registry import expression_functions, losses, toml_layers

    LAYER_TYPES, LOSS_TYPES, FUNCTIONS = toml_layers(), losses(), expression_functions()

    click.echo("layers:      " + ", ".join(LAYER_TYPES))
    click.echo("layer keys:  " + "; ".join(f"{kind}: {', '.join(layer.toml_keys)}"
                                           for kind, layer in LAYER_TYPES.items() if layer.toml_keys))
    click.echo("graph keys:  " + "; ".join(f"{key}: {what}" for key, what in WIRING_KEYS.items()))
    click.echo("model keys:  name, inputs (a width, or a table of named widths), sequence (inputs are then "
               "(batch, sequence, width)), vocabulary (a token model: x holds (batch, sequence) ids), layers, loss")
    click.echo("losses:      " + ", ".join(LOSS_TYPES))
    more = {kind: [r for r in cls.reductions if r not in ("mean", "sum")] for kind, cls in LOSS_TYPES.items()}
    click.echo("reductions:  mean, sum" + "".join(f" ({kind} also {', '.join(extra)})"
                                               for kind, extra in more.items() if extra))
    click.echo("targets:     " + "; ".join(f"{kind}: {' | '.join(cls.toml_targets)}" for kind, cls in LOSS_TYPES.items()
                                           if cls.toml_targets) + "; others: the output's shape")
    own = {}
    for kind, cls in LOSS_TYPES.items():
        for key in cls.toml_keys:
            own.setdefault(key, []).append(kind)
    click.echo("loss keys:   type, reduction, target, l2 (a table: parameter = weight), "
               + ", ".join(f"{key} ({', '.join(kinds)})" for key, kinds in own.items()))
    click.echo("expressions: " + ", ".join(sorted(FUNCTIONS, key=str.lower)) + "; constants: "
               + ", ".join(CONSTANTS) + "; operators: + - * / **")


TRAIN_EXAMPLES = """
\b
Examples:
  symprop train examples/iris_classifier.toml --data examples/data/iris.csv --epochs 100 --lr 0.1
  symprop train examples/char_lm.toml --text examples/data/constitution.txt --optimizer adam --lr 3e-3
  symprop train examples/gpt.py:build --text examples/data/constitution.txt --optimizer adam --lr 3e-3 --epochs 2
  symprop train examples/lenet.py:build --data examples/data/digits.npz --optimizer adam --lr 1e-3 --epochs 12
"""


@main.command(epilog=TRAIN_EXAMPLES, short_help="Train a model on a CSV or a text, in NumPy.")
@click.argument("source")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV file with a header row (the feature columns, then the target), or an .npz of arrays x "
                   "(inputs, images (samples, channels, height, width) for a CNN) and labels (class indices).")
@click.option("--text", "text_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A UTF-8 text, for a token model (vocabulary and sequence in its spec): it learns the next "
                   "character.")
@click.option("--target-column", "target_columns", multiple=True,
              help="The target column (repeatable, for several outputs).  [default: the last column]")
@click.option("--epochs", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), default="sgd", show_default=True,
              help="As torch.optim has them.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Learning rate.  [default: 0.1 for sgd, 1e-3 for adam and adamw]")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--momentum", type=click.FloatRange(0), default=0.0, show_default=True, help="sgd only.")
@click.option("--weight-decay", type=click.FloatRange(0), default=None,
              help="L2 weight decay.  [default: 0, or 1e-2 for adamw, as torch]")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="The share of rows (or of the text, at its end) kept aside to score the trained model.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="For the initial parameters (a model from torch starts from its own), split and batches.")
@click.option("--standardize/--no-standardize", default=True, show_default=True,
              help="CSV: scale each feature to mean 0 and standard deviation 1 (on the training rows).")
@click.option("--out", "out_dir", default="trained", show_default=True,
              help="Where NAME_params.npz and NAME_loss.png go.")
def train(source, data_path, text_path, target_columns, epochs, optimizer, lr, batch_size, momentum, weight_decay,
          holdout, seed, standardize, out_dir):
    """Derive SOURCE and train it with its generated NumPy module (torch.optim's SGD, Adam or AdamW, in NumPy), on
    a CSV or, for a token model, on a text."""
    import math
    import time

    import numpy as np

    from .train import plot_loss, prepare_csv, prepare_npz, prepare_text, save_params, score, with_draws

    if (data_path is None) == (text_path is None):
        raise click.UsageError("give the data: --data FILE.csv, or --text FILE for a token model")
    model = load_model(source)
    if text_path:
        data = prepare_text(text_path, model, holdout)
    elif data_path.suffix == ".npz":
        data = prepare_npz(data_path, model, holdout, seed)
    else:
        data = prepare_csv(data_path, model, target_columns, holdout, seed, standardize)
    module = _fresh_module(model, source)
    lr = lr if lr is not None else 0.1 if optimizer == "sgd" else 1e-3
    click.echo(f"training {model.name} on {data.description}: {epochs} epochs, batches of {batch_size}, "
               f"{optimizer}, lr {lr:g}" + (f", momentum {momentum:g}" if momentum else "")
               + (f", weight decay {weight_decay:g}" if weight_decay else ""))
    initial = model.source_params()  # a model from torch starts where its module's own initialization put it
    if initial is not None:
        click.echo(f"starting from {model.net.torch_name}'s own parameters (those of {source})")
    else:
        initial = module.init_params(seed)
    if "classes" in data.saved:
        click.echo("classes: " + ", ".join(f"{i} = {name}" for i, name in enumerate(data.saved["classes"])))
    steps = epochs * -(-len(data.t) // batch_size)
    start = time.perf_counter()
    out = Path(out_dir)
    reached = {"params": None, "epoch": 0}  # what the last finished epoch reached, to save on Ctrl-C
    # each BatchNorm's running statistics, updated as torch updates them, saved beside the parameters (a state_dict)
    tracked = {"buffers": module.init_buffers()} if hasattr(module, "init_buffers") else {}
    # piped (no terminal), click would print the bar's label alone: no bar then
    bar_context = click.progressbar(length=epochs, label="epoch", show_pos=True, file=sys.stderr,
                                    item_show_func=lambda text: text) if sys.stderr.isatty() else _NoBar()
    with bar_context as bar:
        def progress(epoch, loss, params):
            if not math.isfinite(loss):
                raise Diverged(epoch + 1, loss)
            reached.update(params=params, epoch=epoch + 1)
            rate = (epoch + 1) * steps / epochs / max(time.perf_counter() - start, 1e-9)
            bar.update(1, f"loss {loss:.4g}, {rate:,.0f} steps/s")

        try:
            with np.errstate(all="ignore"):  # a diverging run is said in one line below, not in NumPy's warnings
                params, history = module.train(initial, *data.inputs, data.t, lr, epochs,
                                               batch_size, seed=seed, callback=progress, momentum=momentum,
                                               weight_decay=weight_decay, optimizer=optimizer, **tracked)
        except Diverged as diverged:
            click.echo(f"\nsymprop: training diverged: the mean loss of epoch {diverged.epoch} is {diverged.loss}; "
                       f"try a smaller --lr (now {lr:g})", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            if reached["params"] is None:
                raise
            npz = save_params(out / f"{model.name}_params.npz", reached["params"], **tracked.get("buffers", {}),
                              **data.saved)
            click.echo(f"\nsymprop: interrupted; saved the parameters after epoch {reached['epoch']} to {npz}",
                       err=True)
            sys.exit(130)
    elapsed = time.perf_counter() - start
    def outputs(inputs):  # in eval mode where the batch norms' running statistics were trained, as torch evaluates
        if hasattr(module, "forward_eval"):
            return module.forward_eval(params, *inputs, tracked["buffers"])
        return module.forward(params, *with_draws(model, inputs, seed))

    metric, on_training = score(model, outputs(data.inputs), data.t)
    report = f"final training loss {history[-1]:.4g}; training {metric} {on_training:.4g}"
    if len(data.held_t):
        held = score(model, outputs(data.held_inputs), data.held_t)[1]
        report += f"; held-out {metric} {held:.4g}"
        if text_path:
            held_loss = module.loss(params, *with_draws(model, data.held_inputs, seed), data.held_t)
            report += f"; held-out loss {held_loss:.4g} per character"
    npz = save_params(out / f"{model.name}_params.npz", params, **tracked.get("buffers", {}), **data.saved)
    click.echo(f"{report} ({steps:,} steps in {elapsed:.2f} s)")
    click.echo(f"wrote {npz}")
    curve = out / f"{model.name}_loss.png"
    if plot_loss(history, curve, f"{model.name}: {(text_path or data_path).name}"):
        click.echo(f"wrote {curve}")
    else:
        click.echo("note: matplotlib is not installed, so no loss curve (pip install 'symprop[plot]')", err=True)


class Diverged(Exception):
    def __init__(self, epoch: int, loss: float):
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


PREDICT_EXAMPLES = """
\b
Examples:
  symprop predict examples/iris_classifier.toml --data examples/data/iris.csv
  symprop predict examples/regression.toml --params trained/regression_params.npz --data new.csv > predictions.csv
"""


@main.command(epilog=PREDICT_EXAMPLES, short_help="Predict with parameters that symprop train saved.")
@click.argument("source")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV with the feature columns the model was trained on (by name; others are ignored).")
@click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Parameters saved by symprop train.  [default: trained/NAME_params.npz]")
def predict(source, data_path, params_path):
    """Print the model's prediction for every row of a CSV, as CSV: its features standardized as in training,
    the class (by name, if training named them) for a classifier, else the outputs."""
    import csv

    from .train import load_trained
    from .train import predict as run

    model = load_model(source)
    path = params_path or Path("trained") / f"{model.name}_params.npz"
    params, saved = load_trained(path, model)
    if "x_mean" not in saved:
        raise SymPropError("these parameters were not trained on a CSV (symprop train --data)", str(path))
    header, rows = run(_fresh_module(model, source), model, params, saved, data_path)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _fresh_module(model, source: str, target: str = "numpy"):
    """The model's generated module for `target`, derived now and imported from a scratch folder."""
    from .derivation import Derivation

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / BACKENDS[target].filename.format(name=model.name)
        path.write_text(Derivation(model).render(target, source), encoding="utf-8")
        return _import(path)


SAMPLE_EXAMPLES = """
\b
Examples:
  symprop sample examples/char_lm.toml --prompt "We the People" --length 300
  symprop sample examples/char_lm.toml --params trained/char_lm_params.npz --temperature 0.5 --seed 1
"""


@main.command(epilog=SAMPLE_EXAMPLES, short_help="Generate text with a trained token model.")
@click.argument("source")
@click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Parameters saved by symprop train.  [default: trained/NAME_params.npz]")
@click.option("--prompt", default="", help="The text to continue.")
@click.option("--length", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="How many characters to generate.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=0.8, show_default=True,
              help="Below 1 sharpens the model's distribution, above 1 flattens it.")
@click.option("--seed", type=int, default=0, show_default=True)
def sample(source, params_path, prompt, length, temperature, seed):
    """Print text generated by a token model trained with symprop train --text, one character at a time."""
    from .train import load_trained, token_input
    from .train import sample as generate

    model = load_model(source)
    if token_input(model) is None:
        raise SymPropError("symprop sample generates text with a token model (vocabulary and sequence in its spec)",
                           source)
    path = params_path or Path("trained") / f"{model.name}_params.npz"
    params, saved = load_trained(path, model)
    if "alphabet" not in saved:
        raise SymPropError("holds no alphabet: it was not trained on a text", str(path))
    alphabet = "".join(saved["alphabet"])
    click.echo(generate(_fresh_module(model, source), params, alphabet, prompt, length, temperature, seed))


class _NoBar:
    """A progress bar that shows nothing (output piped)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, steps, text=None):
        pass


@main.command(short_help="Time generated modules against autograd and JAX.",
              context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Time the generated modules against autograd, torch.compile and JAX (symprop bench --help)."""
    import os
    import subprocess

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
    if not script.exists():
        raise SymPropError("the benchmarks come with the source checkout, not with the installed package", "bench")
    env = {**os.environ, "SYMPROP_BENCH_PROG": "symprop bench"}
    sys.exit(subprocess.call([sys.executable, str(script), *args], env=env))
