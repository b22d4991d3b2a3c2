"""Stage 6, render: printed statements poured into a jinja2 template per backend.

Templates hold structure only (imports, signatures, docstrings, the printed lines);
every piece of math in them comes from a printer.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from .declare import model as m
from .printing.numpy import NumPyBackendPrinter
from .printing.statements import StatementPrinter
from .printing.text import TextPrinter
from .schedule import Program, expressions

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("symprop", "templates"),
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
)


INIT_LINEAR = "torch.nn.Linear's default initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in float64."
INIT_MODULES = ("torch's default initialization, in float64: Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)); "
                "LayerNorm\n    ones and zeros; attention's in-projection Xavier-uniform, its biases zero.")


@dataclass
class Function:
    """One generated function's body: parameter unpacking, lines, and what it returns."""

    unpack: list[tuple[str, str]]  # (variable, state_dict key)
    batch_size: bool
    lines: list[str]
    results: list[tuple[str, str]]  # (name, code)
    helpers: dict[str, str]  # name -> source of a function the lines call (NumPy's erf)


def printer_for(target: str) -> StatementPrinter:
    if target == "numpy":
        return NumPyBackendPrinter()
    if target == "torch":
        from .printing.torch import TorchBackendPrinter

        return TorchBackendPrinter()
    if target == "text":
        return TextPrinter()
    raise ValueError(f"unknown target {target!r}")


def function(program: Program, printer: StatementPrinter, param_names: dict) -> Function:
    """Print a Program; `param_names` maps each parameter's symbol to its state_dict key."""
    printer.bind(program, {})
    lines = printer.lines()
    results = [(s.name, printer.output(s)) for s in program.outputs]
    used = set().union(*(s.free_symbols for s in expressions(program)))
    unpack = [(symbol.name, key) for symbol, key in param_names.items() if symbol in used]
    return Function(unpack, program.uses_batch_size, lines, results, printer.helpers)


def render_module(derivation, target: str, source: str, command: str) -> str:
    """The source text of NAME_{target}.py."""
    model = derivation.model
    params = {t.symbol: key for key, t in derivation.lowered.params.items()}
    functions = {name: function(program, printer_for(target), params)
                 for name, program in derivation.programs.items()}
    text = printer_for("text")
    closed_forms = function(derivation.programs["loss_and_gradients"], text, params)
    inits = {key: (kind, *map(repr, rest)) for key, (kind, *rest) in model.initializations.items()}
    helpers = {name: code for fn in functions.values() for name, code in sorted(fn.helpers.items())}
    return _environment.get_template(f"{target}_module.py.j2").render(
        name=model.name, source=source, command=command,
        summary=derivation.summary(),
        closed_forms=closed_forms,
        param_shapes=list(model.parameters.items()),
        inits=inits,
        init_doc=INIT_LINEAR if all(isinstance(model.net.layers[int(key.split(".")[0])], m.Linear)
                                    for key in model.parameters) else INIT_MODULES,
        x_shape="(batch, sequence, inputs)" if model.sequence else "(batch, inputs)",
        x_shape_tuple=str((None, *model.input_shape[1:])),
        helpers=list(helpers.values()),
        f=functions,
    )
