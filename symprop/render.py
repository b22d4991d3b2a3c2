"""Stage 6, render: printed statements poured into a jinja2 template per backend.

Templates hold structure only (imports, signatures, docstrings, the printed lines); every piece
of math in them comes from a printer. The backends themselves are registered in `backends`.
"""

from __future__ import annotations

import subprocess
import textwrap
from dataclasses import dataclass, field

import jinja2

from .ops.registry import OPS
from .plan import plan
from .printing.statements import StatementPrinter
from .printing.text import TextPrinter
from .program import Program, expressions, reads
from .schedule import after_forward, forward_part

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("symprop", "templates"),
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
)

INIT_PARAMETERS = "Parameters declared with symprop.Parameter as their init says (normal: N(0, std))."


@dataclass
class Function:
    """One generated function's body: parameter unpacking, lines, and what it returns."""

    unpack: list[tuple[str, str]]  # (variable, state_dict key)
    batch_size: bool
    lines: list[str]
    results: list[tuple[str, str]]  # (name, code)
    helpers: dict[str, str]  # name -> source of a function the lines call (NumPy's erf)
    computes: list[str]  # for each line, the statement it computes (or a part of); "" for a del
    forward: str = ""  # the lines start from the network's output, `forward = forward(params, ...)`
    note: list[str] = field(default_factory=list)  # a comment's lines: why the forward pass is written again


def function(program: Program, printer: StatementPrinter, param_names: dict, carrier: str = "x",
             options=None) -> Function:
    """Print a Program, planned with `options` (a backend's, for code; none for the docstring's closed forms);
    `param_names` maps each parameter's symbol to its state_dict key; new arrays take the dtype and device of
    `carrier`."""
    planned = plan(program, options) if options is not None else None
    printer.bind(planned or program, carrier)
    program = planned.program if planned else program
    spelled = printer.spelled()
    results = [(s.name, printer.output(s)) for s in program.outputs]
    used = set().union(*(s.free_symbols for s in expressions(program)))
    unpack = [(symbol.name, key) for symbol, key in param_names.items() if symbol in used]
    return Function(unpack, program.uses_batch_size, [line for line, _ in spelled], results, printer.helpers,
                    [step.of if step.kind != "free" else "" for _, step in spelled])


def why_again(program: Program, forward: Program, reason: str, loss: bool = False) -> list[str]:
    """The lines of a comment for a function that computes the forward pass itself, rather than call forward: the
    values of it that the rest reads (`loss`: besides the output)."""
    output = forward.outputs[0].expr
    part = forward_part(program, output) if output.is_Symbol else set()
    rest = [s for s in program.statements + program.outputs if s.symbol not in part]
    read = set().union(*(reads(s) for s in rest)) & (part - {output} if loss else part)
    names = [s.name for s in program.statements if s.symbol in read and s.label]
    shown = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)
    if len(names) > 5:
        shown = f"{', '.join(names[:4])} and {len(names) - 4} more"
    text = "The forward pass, as forward computes it" + (reason.format(shown) if names else ".")
    return textwrap.wrap(text, 110)


def shape_doc(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def input_doc(model) -> str:
    """"x of shape (batch, 4)", or "x (batch, 6) and u (batch, 3)"."""
    shapes = [f"{name} {'of shape ' if len(model.input_shapes) == 1 else ''}{shape_doc(shape)}"
              + (" (integer ids)" if name in model.index_ranges else " (booleans)" if name in model.mask_inputs else "")
              for name, shape in model.input_shapes.items()]
    return shapes[0] if len(shapes) == 1 else ", ".join(shapes[:-1]) + " and " + shapes[-1]


def input_comment(model, name: str) -> str:
    if name in model.index_ranges:
        bound = model.index_ranges[name]
        return f"  # integer ids in [0, {bound})" if isinstance(bound, int) else \
            f"  # integers, column k of the last axis ids in [0, {bound}[k]) (None: no table's)"
    if name in model.padding_inputs:
        return "  # booleans: True where a position is padding"
    return "  # booleans" if name in model.mask_inputs else ""


def target_doc(model) -> str:
    if model.target_kind == "index":
        return f"class indices of shape {shape_doc(model.target_shape)}"
    return f"of shape {shape_doc(model.target_shape)}"


def init_doc(model) -> str:
    """How init_params draws the parameters: each layer's own default, as its op says."""
    if hasattr(model.net, "init_doc"):  # exported from torch: the source's layer classes say
        return textwrap.fill(model.net.init_doc(), 110, subsequent_indent="    ", break_on_hyphens=False)
    present = {type(module) for _, module in model.net.named_modules()}
    owners = {type(module) for _, module in model.net.named_modules() if module._parameters}
    docs = [op.init_doc for op in OPS.values() if op.layer_class in present and getattr(op, "init_doc", "")]
    parts = [f"torch's default initialization, drawn in float64: {'; '.join(docs)}."] * bool(docs)
    if owners - {op.layer_class for op in OPS.values()}:
        parts.append(INIT_PARAMETERS)
    return textwrap.fill(" ".join(parts), 110, subsequent_indent="    ", break_on_hyphens=False)


def init_arguments(kind: str, scale: float = 0.0) -> str:
    """The arguments of uniform(a, b) or normal(mean, std) for an initialization; "" for ones and zeros."""
    return {"uniform": f"-{scale!r}, {scale!r}", "normal": f"0.0, {scale!r}"}.get(kind, "")


def dtype_carrier(model) -> str:
    """What generated code reads its dtype and device from: the first float input, or for a token model (its
    inputs are ids and masks) the first parameter."""
    floats = [name for name in model.input_shapes if name not in model.index_ranges and name not in model.mask_inputs
              and name not in getattr(model, "integer_inputs", ())]
    return floats[0] if floats else f'params["{next(iter(model.parameters))}"]'


def formatted(text: str) -> str:
    """Python source as ruff formats it (line length 120; no configuration file read, so the same everywhere)."""
    from ruff.__main__ import find_ruff_bin

    result = subprocess.run([find_ruff_bin(), "format", "--isolated", "--line-length", "120", "-"], input=text,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:  # a generated module that does not parse is symprop's bug: say so, whole
        raise RuntimeError(f"ruff could not format the generated module: {result.stderr}")
    return result.stdout


def _draw(backend, model, name: str) -> str:
    """train()'s fresh draw of a random input for each batch: a dropout's mask, or noise."""
    kind, *p = model.random_inputs[name]
    shape = f"(len(batch), {', '.join(map(str, model.input_shapes[name][1:]))})" if model.input_shapes[name][1:] \
        else "(len(batch),)"
    dtype = f'params["{next(iter(model.parameters))}"].dtype'
    return dict(backend.draws)[kind].format(shape=shape, p=p[0] if p else "", dtype=dtype)


def render_module(derivation, backend, source: str, command: str) -> str:
    """The source text of NAME_{backend}.py, formatted by ruff."""
    model = derivation.model
    carrier = next(iter(model.input_shapes))  # the batch size is its first axis
    dtype_source = dtype_carrier(model)
    params = {t.symbol: key for key, t in derivation.lowered.params.items()}
    forward, programs = derivation.programs["forward"], dict(derivation.code_programs)
    head = after_forward(programs["loss"], forward)  # the loss reads the output alone: forward, then the loss of it
    if head is not None:
        programs["loss"] = head
    functions = {name: function(program, backend.printer(), derivation.code_names.get(name, params), dtype_source,
                                backend.plan("forward" if name == "forward_eval" else name))
                 for name, program in programs.items()}
    if head is not None:
        functions["loss"].forward = forward.outputs[0].expr.name
    else:
        functions["loss"].note = why_again(programs["loss"], forward, ": the loss reads {} as well as the output.",
                                           loss=True)
    functions["loss_and_gradients"].note = why_again(
        programs["loss_and_gradients"], forward,
        ", but keeping {} for the loss and the backward pass (forward frees each value as soon as it can).")
    closed_forms = function(derivation.code_programs["loss_and_gradients"], TextPrinter(), params, dtype_source)
    inits = {key: (kind, init_arguments(kind, *rest)) for key, (kind, *rest) in model.initializations.items()}
    measured = dict(functions["loss_and_gradients"].results[1 + len(params):])  # the batch statistics' code
    statistics = [(path, total.shape[1], repr(momentum), measured[f"{call}.batch_mean"], measured[f"{call}.batch_var"])
                  for path, momentum, total, *_, call in derivation.lowered.graph.running_statistics]
    helpers = {name: code for fn in functions.values() for name, code in sorted(fn.helpers.items())}
    return formatted(environment.get_template(backend.template).render(
        name=model.name, source=source, command=command,
        summary=derivation.summary(),
        closed_forms=closed_forms,
        param_shapes=list(model.parameters.items()),
        tied_keys=list(model.tied_keys.items()),
        frozen_keys=model.frozen_keys,
        buffer_shapes=list(model.buffer_shapes.items()),
        statistics=statistics,
        input_shapes=[(name, (None, *shape[1:]), input_comment(model, name))
                      for name, shape in model.input_shapes.items()],
        batch_inputs=", ".join(f"{name}[batch]" if name not in model.random_inputs else name
                               for name in model.input_shapes),
        draws=[(name, _draw(backend, model, name)) for name in model.random_inputs],
        inputs=", ".join(model.input_shapes),
        data_inputs=", ".join(name for name in model.input_shapes if name not in model.random_inputs),
        random_inputs=list(model.random_inputs),
        input_names=list(model.input_shapes),
        token_ids=dict(model.index_ranges),
        column_ids=any(isinstance(bound, list) for bound in model.index_ranges.values()), array_of=backend.array_of,
        token_ids_text="{" + ", ".join(f'"{name}": {bound!r}' for name, bound in model.index_ranges.items()) + "}",
        digest=derivation.digest,
        input_keywords=", ".join(f"{name}={name}" for name in model.input_shapes),
        target_shape=(None, *model.target_shape[1:]),
        target_integers=model.target_kind == "index",
        not_integers=backend.not_integers.format("arrays['t']"), ids_not_integers=backend.not_integers.format("value"),
        array_type=backend.array_type, array_hint=backend.array_hint,
        class_range=getattr(model, "class_range", None),
        simplex_axis=getattr(model, "simplex_axis", None), epsilon=backend.epsilon.format("arrays['t']"),
        number_inputs=[(name, backend.as_numbers.format(name, dtype_source)) for name in model.input_shapes
                       if backend.as_numbers and name in getattr(model, "integer_inputs", ()) and
                       name not in model.index_ranges],
        carrier=carrier,
        input_doc=input_doc(model),
        target_doc=target_doc(model),
        loss_doc=backend.loss_doc,
        loss_as_float=backend.loss_as_float,
        maximum=backend.maximum,
        inits=inits,
        init_doc=init_doc(model),
        helpers=list(helpers.values()),
        f=functions,
    ))
