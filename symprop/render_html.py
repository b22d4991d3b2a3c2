"""Render stage, HTML: the derivation beside the code it became, each equation linked to its lines of code.

The equations are MathML (SymPy's MathML printer), which browsers render with no script and no network; the
code is the generated NumPy module's `loss_and_gradients`. Hovering over or clicking an equation highlights the
lines that compute it, and the other way round: a few lines of inline script, so the page works opened from a file.
"""

from __future__ import annotations

import sympy as sp

from .plan import plan
from .printing.mathml import MathMLBackendPrinter
from .render import dtype_carrier, environment, function


def parts(derivation, backend) -> dict:
    """The rows of the page: [(id, label, MathML)], the code lines [(text, id or "")], and the gradients; the code is
    `backend`'s (its printer and plan: the NumPy module's loss_and_gradients)."""
    options = backend.plan("loss_and_gradients")
    program = plan(derivation.programs["loss_and_gradients"], options).program  # as the module runs it
    params = {t.symbol: key for key, t in derivation.lowered.params.items()}
    dtype_source = dtype_carrier(derivation.model)
    code = function(derivation.programs["loss_and_gradients"], backend.printer(), params, dtype_source, options)
    printer = MathMLBackendPrinter()
    printer.bind(program, dtype_source)
    rows = []
    for line in printer.lines():
        name, _, mathml = line.partition(" = ")
        rows.append((name, printer.doprint(sp.Symbol(name)), mathml))
    loss, *gradients = program.outputs
    rows.append(("L", "<mi>L</mi>", printer.output(loss)))
    for statement in gradients:
        label = (f"<mfrac><mrow><mo>\u2202</mo><mi>L</mi></mrow><mrow><mo>\u2202</mo>"
                 f"{printer.doprint(sp.Symbol(derivation.lowered.params[statement.name].name))}</mrow></mfrac>")
        rows.append((f"grad:{statement.name}", label, printer.output(statement)))
    inputs = ", ".join(derivation.model.input_shapes)
    lines = [(f"def loss_and_gradients(params, {inputs}, t):", "")] + \
        [(f'    {var} = params["{key}"]', "") for var, key in code.unpack] + \
        [(f"    N = {next(iter(derivation.model.input_shapes))}.shape[0]", "")] * bool(code.batch_size)
    ids = {row[0] for row in rows}
    lines += [("    " + line, of if of in ids else "") for line, of in zip(code.lines, code.computes, strict=True)]
    lines += [(f"    return float({code.results[0][1]}), {{", "L")] + \
        [(f'        "{key}": {text},', f"grad:{key}") for key, text in code.results[1:]] + [("    }", "")]
    return {"rows": rows, "code_lines": lines}


def render_html(derivation, backend, source: str, command: str) -> str:
    model = derivation.model
    return environment.get_template(backend.template).render(
        name=model.name, source=source, command=command, summary=derivation.summary(), digest=derivation.digest,
        notes=derivation.notes,
        **parts(derivation, backend))
