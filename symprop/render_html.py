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

TITLES = {"loss_and_gradients": "The loss and its gradients", "hvp": "The Hessian-vector product"}


def parts(derivation, backend, name: str = "loss_and_gradients") -> dict:
    """The rows of one function's part of the page: [(id, label, MathML)], the code lines [(text, id or "")]; the code
    is `backend`'s (its printer and plan: the NumPy module's `name`, loss_and_gradients or hvp). The ids of the hvp's
    rows start with "hvp:", so that each equation lights up its own function's lines."""
    options = backend.plan(name)
    source = derivation.code_programs[name] if name != "loss_and_gradients" else derivation.programs[name]
    program = plan(source, options).program  # as the module runs it
    params = {t.symbol: key for key, t in derivation.lowered.params.items()}
    names = derivation.code_names.get(name, params)
    dtype_source = dtype_carrier(derivation.model)
    code = function(source, backend.printer(), names, dtype_source, options)
    printer = MathMLBackendPrinter()
    printer.bind(program, dtype_source)
    prefix = "" if name == "loss_and_gradients" else f"{name}:"
    rows = []
    for line in printer.lines():
        lhs, _, mathml = line.partition(" = ")
        rows.append((prefix + lhs, printer.doprint(sp.Symbol(lhs)), mathml))
    loss, *gradients = program.outputs
    rows.append((prefix + "L", "<mi>L</mi>", printer.output(loss)))
    for statement in gradients:
        theta = printer.doprint(sp.Symbol(derivation.lowered.params[statement.name].name))
        label = (f"<mfrac><mrow><mo>\u2202</mo><mi>L</mi></mrow><mrow><mo>\u2202</mo>{theta}</mrow></mfrac>"
                 if not prefix else f"<msub><mrow><mo>(</mo><msup><mo>\u2207</mo><mn>2</mn></msup><mi>L</mi><mi>v</mi>"
                                    f"<mo>)</mo></mrow>{theta}</msub>")
        rows.append((f"{prefix}grad:{statement.name}", label, printer.output(statement)))
    inputs = ", ".join(derivation.model.input_shapes)
    lines = [(f"def {name}(params, {inputs}, t{', v' * bool(prefix)}):", "")] + \
        [(f'    {var} = v["{key[2:]}"]' if key.startswith("v:") else f'    {var} = params["{key}"]', "")
         for var, key in code.unpack] + \
        [(f"    N = {next(iter(derivation.model.input_shapes))}.shape[0]", "")] * bool(code.batch_size)
    ids = {row[0] for row in rows}
    lines += [("    " + line, prefix + of if prefix + of in ids else "")
              for line, of in zip(code.lines, code.computes, strict=True)]
    lines += [(f"    return float({code.results[0][1]}), {{", prefix + "L")] + \
        [(f'        "{key}": {text},', f"{prefix}grad:{key}") for key, text in code.results[1:]] + [("    }", "")]
    return {"title": TITLES[name], "rows": rows, "code_lines": lines}


def render_html(derivation, backend, source: str, command: str) -> str:
    model = derivation.model
    sections = [parts(derivation, backend, name) for name in TITLES if name in derivation.code_programs]
    return environment.get_template(backend.template).render(
        name=model.name, source=source, command=command, summary=derivation.summary(), digest=derivation.digest,
        notes=derivation.notes, sections=sections)
