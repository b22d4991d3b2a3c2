"""Render stage, LaTeX: the derivation as a textbook prints it, step by step.

The document is built from the same scheduled statements as the generated code, so
every symbol in it is a line of code (the table at its end pairs them).
"""

from __future__ import annotations

import re

import jinja2
import sympy as sp

from .graph.ir import z
from .notes import NOTES
from .ops.loss import Loss
from .ops.registry import fact
from .printing.latex import LatexBackendPrinter, ReadableLatexPrinter, atomic, latex_name
from .printing.primes import prime_notation
from .program import inlinable, reads
from .schedule import relabeller
from .shapes import N
from .simplify import tidy

MAX_FULL_FORM = 6000  # characters; a longer closed form is left to the steps
MAX_GROUP = 150  # characters in one { } group, which TeX does not break across lines (a slice's subscripted operand)

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("symprop", "templates"),
    block_start_string="<%", block_end_string="%>", variable_start_string="<<", variable_end_string=">>",
    comment_start_string="<#", comment_end_string="#>",
    keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
)

def _symbol(statement) -> sp.Symbol:
    return statement.tensor.symbol if statement.tensor is not None else sp.Symbol(statement.name, real=True)


def _longest_group(text: str) -> int:
    """The length of the longest outermost { } group of a LaTeX text."""
    depth, start, longest = 0, 0, 0
    for i, char in enumerate(text):
        if char == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
            start = i if depth == 1 else start
        elif char == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            longest = max(longest, i - start) if depth == 0 else longest
    return longest


def _printer(derivation, program, keep, plain_parentheses=False, aliases=None) -> LatexBackendPrinter:
    """A printer that writes each statement whose name is not in `keep` as its definition, in place, and each
    statement in `aliases` by the name given there."""
    printer = LatexBackendPrinter(program.shapes, derivation.model.target_kind != "index",
                                  long_fractions=plain_parentheses)
    printer.bind(program)
    printer.overflow = set()  # symbols whose definition in full runs past MAX_FULL_FORM: left as names
    dense = printer._dense_target
    for statement in program.statements:
        if statement.name in (aliases or {}):
            printer._expanded[_symbol(statement)] = latex_name(aliases[statement.name], dense)
            continue
        if statement.name in keep or fact(statement.kind, "latex_stem"):  # written by its name: T
            continue
        if reads(statement) & printer.overflow:
            printer.overflow.add(_symbol(statement))
            continue
        text = printer._unwrap(printer.statement(statement), reads(statement))
        if len(text) > MAX_FULL_FORM or (plain_parentheses and _longest_group(text) > MAX_GROUP):
            # expanding further would only grow it (residual paths double it), or TeX could not break it
            printer.overflow.add(_symbol(statement))
            continue
        if plain_parentheses:  # TeX breaks long lines inside ( ) and [ ], but not inside \left( \right)
            text = text.replace(r"\left(", "(").replace(r"\right)", ")").replace(r"\left[", "[") \
                .replace(r"\right]", "]")
        if fact(statement.kind, "product"):
            printer.contractions.add(_symbol(statement))
        elif statement.kind == "expr" and statement.expr.is_Add and all(a.is_Symbol for a in statement.expr.args):
            printer._sums[_symbol(statement)] = statement.expr
        if not fact(statement.kind, "product") and not atomic(text):
            text = f"({text})" if plain_parentheses else rf"\left({text}\right)"
        printer._expanded[_symbol(statement)] = text
    return printer


def document_parts(derivation) -> dict:
    """Everything the LaTeX templates show, printed."""
    graph = derivation.lowered.graph
    program = derivation.programs["loss_and_gradients"]
    inlined = inlinable(program, code=False)
    aliases = _z_names(graph, program)
    named = {s.name for s in program.statements
             if (s.kind == "expr" and s.label) or (s.kind != "expr" and _symbol(s) not in inlined)} | set(aliases)
    short = _printer(derivation, program, named, aliases=aliases)
    forward_names = derivation._forward_names
    in_full = _printer(derivation, program, forward_names, plain_parentheses=True, aliases=aliases)
    loss_in_full = _printer(derivation, program, derivation.lowered.network_names, plain_parentheses=True,
                            aliases=aliases)
    dense = short._dense_target

    forward, backward = [], []
    defined = {sp.Symbol(s.name, real=True) for s in program.statements} | {_symbol(s) for s in program.statements} | \
        {t.symbol for t in graph.tensors.values() if t.op in ("input", "target", "param")} | \
        {sp.Symbol(alias, real=True) for alias in aliases.values()}
    relabel_all = relabeller({sp.Symbol(name, real=True): expr for expr, name in graph.labels.items()})
    definitions = {_symbol(s): short._unwrap(short.statement(s), reads(s))
                   for s in program.statements if s.name in named}
    heading = _module_headings(graph)
    for statement in program.statements:
        if statement.name not in named:
            continue
        lhs, rhs = _fit(latex_name(aliases.get(statement.name, statement.name), dense)), \
            definitions[_symbol(statement)]
        if statement.name in forward_names:
            forward.append((lhs, rhs, short.shape_text(statement.shape or program.shapes.get(_symbol(statement), ())),
                            heading(statement.name, "forward")))
        else:
            chain, local = _chain(derivation, statement, short, relabel_all, defined)
            # a row that only repeats: left out
            backward.append((lhs, "" if chain == rhs else chain, local, rhs, heading(statement.name, "backward")))
    loss = program.outputs[0]
    gradients = []
    for statement in program.outputs[1:]:
        name = _fit(latex_name(derivation.lowered.params[statement.name].name), "0.12")
        full = "" if reads(statement) & in_full.overflow else in_full.output(statement)
        brief = definitions.get(statement.expr) or short.output(statement)  # 1^T δ, not its name b̄
        gradients.append((statement.name, name, brief, full if len(full) <= MAX_FULL_FORM else ""))
    loss_full = "" if reads(loss) & loss_in_full.overflow else loss_in_full.output(loss)
    code_names = [s.name for s in program.statements if s.name in named] + \
        [t.name for t in derivation.lowered.params.values()] + ["x", "t", "N"]
    return {
        "second": _second_order_rows(derivation, set(named) | set(forward_names), aliases, dense),
        "gauss_newton": _gauss_newton_rows(derivation, set(forward_names), set(named) - set(forward_names), dense),
        "hessian": _hessian_rows(derivation, short, dense),
        "forward": forward,
        "loss": ("L", short.output(loss)),
        "loss_full": loss_full if len(loss_full) <= MAX_FULL_FORM else "",
        "backward": backward,
        "gradients": gradients,
        "derivatives": _derivative_facts(graph),
        "textbook": _textbook(derivation.model),
        "notes": [NOTES[kind].latex.format(*(_escape(n) if NOTES[kind].warning else latex_name(n, dense)
                                             for n in names)) for kind, *names in graph.notes],
        "glossary": [(latex_name(aliases.get(n, n), dense), n) for n in dict.fromkeys(code_names)],
    }


def _second_order_rows(derivation, shown: set, aliases: dict, dense: bool) -> tuple[list, list]:
    """The Hessian-vector product's steps that the gradient's rows do not show, and its result per parameter:
    ([(lhs, rhs)], [(key, name, rhs)]); empty where it was not derived."""
    program = derivation.code_programs.get("hvp")
    if program is None:
        return [], []
    products = {t.name for t in derivation.lowered.graph.tensors.values() if fact(t.op, "product")}
    tangents = {s.name for s in program.statements  # ż, δ̇: a product's is read where it stands
                if s.name.endswith("_dot") and s.name[:-4] in shown and s.name[:-4] not in products}
    named = {s.name for s in program.statements if s.kind == "expr" and s.label and s.name not in shown} | tangents
    printer = _printer(derivation, program, named | shown, aliases=aliases)
    rows = [(_fit(latex_name(s.name, dense)), printer._unwrap(printer.statement(s), reads(s)))
            for s in program.statements if s.name in named]
    results = [(s.name, _fit(latex_name(derivation.lowered.params[s.name].name), "0.12"), printer.output(s))
               for s in program.outputs[1:]]
    return rows, results


def _gauss_newton_rows(derivation, forward: set, backward: set, dense: bool) -> tuple[list, list]:
    """The Gauss–Newton product's steps: J v as the output's tangents, H J v as the tangent of the loss's gradient in
    the output (q), then Jᵀ q as the backward pass's steps; ([(lhs, rhs)], [(key, name, rhs)]), empty where it was
    not derived. The loss is read again on the output held constant, so its values are named again (p_1 for p):
    they are the forward pass's, and the document writes them so."""
    program = derivation.code_programs.get("ggn_vp")
    if program is None:
        return [], []
    known = forward | backward
    products = {t.name for t in derivation.lowered.graph.tensors.values() if fact(t.op, "product")}
    names = {s.name for s in program.statements}
    again = {s.name: _first(s.name) for s in program.statements if s.name not in known and _first(s.name) != s.name
             and (_first(s.name) in known or _first(s.name).removesuffix("_dot") in known - products)}
    taken = [alias for alias in again.values()]
    again = {name: alias for name, alias in again.items()  # not where the name is another value's here
             if alias not in names and taken.count(alias) == 1}
    named = {s.name for s in program.statements
             if (again.get(s.name, s.name).endswith("_dot") and again.get(s.name, s.name)[:-4] in forward | backward
                 and again.get(s.name, s.name)[:-4] not in products)
             or (s.name in again and again[s.name] in backward) or fact(s.kind, "stops_gradient") and s.name != "y"}
    kept = named | forward | {name for name, alias in again.items() if alias in forward}  # p_1, read as p
    printer = _printer(derivation, program, kept, aliases=again)

    def value(statement):  # q's value; that it is held constant, the text says
        if fact(statement.kind, "stops_gradient"):
            return printer.doprint(statement.operands[0])
        return printer._unwrap(printer.statement(statement), reads(statement))

    rows = [(_fit(latex_name(again.get(s.name, s.name), dense)), value(s))
            for s in program.statements if s.name in named]
    results = [(s.name, _fit(latex_name(derivation.lowered.params[s.name].name), "0.12"), printer.output(s))
               for s in program.outputs[1:]]
    return rows, results


def _first(name: str) -> str:
    """A value's name without the copy index its second computation took: p_1 → p, z2_dot_1 → z2_dot."""
    return re.sub(r"_\d+(?=_dot$|$)", "", name) if re.search(r"[a-z]\d*_\d+(_dot)?$", name) else name


def _hessian_rows(derivation, printer, dense: bool) -> list[tuple[str, str]]:
    """The Hessian in closed form, for a network of one linear layer z = X Wᵀ + b (textbook_hessian.py): the loss's
    Hessian in each sample's z, then each block of the parameters'; [] for any other network."""
    form = derivation.hessian_form
    if form is None:
        return []
    params = derivation.lowered.params
    W = latex_name(params[form.weight].name, dense)
    b = latex_name(params[form.bias].name, dense) if form.bias else ""
    X = latex_name(next(iter(derivation.lowered.inputs)), dense)
    blocks = (rf"\nabla^{{2}}_{{{W}}} L", rf"\nabla^{{2}}_{{{b}}} L",
              rf"\frac{{\partial^{{2}} L}}{{\partial {W}\, \partial {b}}}")
    scale = "" if form.scale == 1 else r"\frac{1}{N}"
    d = form.diagonal
    if form.classes == 1 and not form.rank_one:  # one output: a number per sample
        if not d.free_symbols:  # the same for every sample: 2XᵀX/N
            c = printer.doprint(d * form.scale)
            rows = [(r"\frac{\partial^{2} L}{\partial z_{n}^{2}}", c), (blocks[0], rf"{c}\, {X}^{{\top}} {X}")]
            return rows + ([(blocks[1], printer.doprint(d * form.scale * N)),
                            (blocks[2], rf"{c}\, {X}^{{\top}} \mathbf{{1}}")] if b else [])
        h = printer.doprint(d)
        rows = [(r"\frac{\partial^{2} L}{\partial z_{n}^{2}}", rf"{scale} \left[{h}\right]_{{n}}"),
                (blocks[0], rf"{scale} {X}^{{\top}} \operatorname{{diag}}\left({h}\right) {X}")]
        return rows + ([(blocks[1], rf"{scale} \mathbf{{1}}^{{\top}} \left({h}\right)"),
                        (blocks[2], rf"{scale} {X}^{{\top}} \left({h}\right)")] if b else [])
    parts = [rf"\operatorname{{diag}}\left({printer.doprint(d)}\right)"] if d != 0 else []
    for u, w in form.rank_one:
        outer = rf"{printer.doprint(w)}^{{\top}}"
        if sp.expand(u + w) == 0:
            parts.append(rf"- {printer.doprint(w)} {outer}")
        else:
            parts.append(("+ " if parts else "") + rf"{printer.doprint(u)} {outer}")
    H = " ".join(parts)
    H = rf"{scale} \left({H}\right)" if scale and len(parts) > 1 else f"{scale} {H}"
    rows = [(r"H_{n} = \frac{\partial^{2} L}{\partial z_{n}\, \partial z_{n}^{\top}}", H),
            (blocks[0], r"\sum_{n} H_{n} \otimes x_{n} x_{n}^{\top}")]
    return rows + ([(blocks[1], r"\sum_{n} H_{n}"), (blocks[2], r"\sum_{n} H_{n} \otimes x_{n}")] if b else [])


def _z_names(graph, program) -> dict[str, str]:
    """{statement: z_i} for each matrix product whose δ_i the document shows but that no label names (a linear
    layer without bias): shown as the row z_i = X W^T, so that δ_i = ∂L/∂z_i names a defined value."""
    labels = set(graph.labels.values()) | {s.name for s in program.statements}
    aliases = {}
    for statement in program.statements:
        cotangent = graph.cotangent_names.get(_symbol(statement), "")
        if fact(statement.kind, "product") and cotangent.startswith("dz") and cotangent[1:] not in labels:
            aliases[statement.name] = cotangent[1:]
    return aliases


def _chain(derivation, statement, printer, relabel_all, defined: set) -> tuple[str, str]:
    """(δ_i as the chain rule gives it, before simplifying: Σ (cotangent in) ⊙ (local derivative), the local
    derivative named where it is an activation's, f′(z) = … for the reader); "" where it would name a value the
    document defines nowhere (a cotangent kept fused into the next step)."""
    graph = derivation.lowered.graph
    tensor = {name: symbol for symbol, name in graph.cotangent_names.items()}.get(statement.name)
    if tensor is None or tensor not in graph.chain:
        return "", ""
    relabel = relabel_all
    parts = [(operand, incoming, local) for operand, incoming, local in graph.chain[tensor]]
    if any(_symbol(statement) in relabel(e).free_symbols for part in parts for e in part[1:]):
        # δ's own label would name (part of) its chain: relabel without it (rare, so built only then)
        relabel = relabeller({sp.Symbol(name, real=True): expr for expr, name in graph.labels.items()
                               if name != statement.name})
    through = _activation_of(graph, statement.name[1:]) if len(parts) == 1 else None
    if through is not None:  # ∂L/∂h ⊙ f′(z), f′(z) named
        (operand, incoming, _), (h, prime, derivative) = parts[0], through
        factor = relabel(incoming) * sp.diff(relabel(operand), h)  # what h is read in, differentiated
        if not factor.free_symbols - defined - {N}:
            text = printer.doprint(factor)
            text = text if atomic(text) else rf"\left({text}\right)"
            product = printer.doprint(prime) if factor == 1 else rf"{text} \odot {printer.doprint(prime)}"
            return product, rf"{printer.doprint(prime)} = {printer.doprint(relabel(derivative))}"
    terms = [relabel(incoming) * relabel(local) for _, incoming, local in parts]
    chain = sp.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]
    if chain == _symbol(statement) or (statement.expr is not None and chain == statement.expr):
        return "", ""  # nothing happened on the way: δ is what flowed in
    if chain.free_symbols - defined - {N}:
        return "", ""
    return printer.doprint(chain), ""


def _derivative(scalar: sp.Expr) -> sp.Expr:
    """f′(z), z real (as the graph's values are): |z|′ is sign(z), where SymPy's complex z gives re/im parts."""
    real = sp.Dummy("z", real=True)
    return tidy(sp.diff(scalar.xreplace({z: real}), real)).xreplace({real: z})


def _activation_of(graph, z_name: str):
    """(h, f′(z) as a named symbol, f′(z) itself) when the value labelled `z_name` is read only through an
    activation h = f(z); None otherwise."""
    z_expr = next((expr for expr, name in graph.labels.items() if name == z_name), None) or \
        next((symbol for symbol, name in graph.cotangent_names.items() if name == "d" + z_name), None)
    if z_expr is None:
        return None
    for scalar, latex in graph.activations.items():
        h_name = graph.labels.get(tidy(scalar.xreplace({z: z_expr})))
        if h_name is None:
            continue
        prime = sp.Function(latex + "'")(sp.Symbol(z_name, real=True))
        derivative = _derivative(scalar).xreplace({z: z_expr})
        return sp.Symbol(h_name, real=True), prime, derivative
    return None


def _textbook(model) -> tuple[str, str]:
    """(the loss as a book writes it, the note on what the computation adds); ("", "") for a loss function."""
    return model.loss.textbook() if isinstance(model.loss, Loss) else ("", "")


def _derivative_facts(graph) -> list[str]:
    """The derivatives of the elementwise functions the model applies, as sympy.diff gives them."""
    facts = []
    for scalar in graph.activations:
        function = sp.latex(scalar) if scalar.is_Function else rf"\left({sp.latex(scalar)}\right)"
        fact = rf"\frac{{d}}{{dz}} {function} = {sp.latex(_derivative(scalar))}"
        if fact not in facts:
            facts.append(fact)
    return facts


LONG_NAME = 48  # characters of LaTeX: a parameter named by its module path, transformer.h.0.ln_1.weight


def _fit(name: str, width: str = "0.12") -> str:
    """A long name, scaled down to a share of the line where it is wider, so that its row's formula still fits."""
    return rf"\fitto{{{width}\linewidth}}{{${name}$}}" if len(name) > LONG_NAME else name


def _module_headings(graph):
    """heading(name, part): the module path (transformer.h.0.attn) that a row's value was made in, escaped, where it
    differs from the previous row's in that part of the document; "" elsewhere, and for models of one module."""
    if len(set(graph.module_of.values())) < 2:
        return lambda name, part: ""
    last = {}

    def heading(name: str, part: str) -> str:
        path = graph.module_of.get(name, "")
        if not path or last.get(part) == path:
            return ""
        last[part] = path
        return _escape(path)

    return heading


def layer_rows(derivation) -> list[tuple[str, str, str]]:
    """(layer, what it is, its output's shape) for each call of the network's layers: the model as a table."""
    seen, rows = set(), []
    for path, module, shape in derivation.lowered.layers or []:
        again = path in seen
        seen.add(path)
        dims = r" \times ".join(map(str, shape)) if shape is not None else ""
        rows.append((_escape(path) + (" (again)" if again else ""), _escape(module.describe()), dims))
    return rows


def render_document(derivation, backend, source: str, command: str) -> str:
    digest, derivation = derivation.digest, derivation.as_book()  # the code's digest: the declaration's
    layers = layer_rows(derivation)
    network = f"The network of the table below, {len(layers)} layer{'s' * (len(layers) > 1)}," if layers else ""
    longest = max((len(path) for path, _, _ in layers), default=0)  # module paths: transformer.h.0.attn.c_attn
    return _environment.get_template(backend.template).render(
        layers=layers, what_width="0.62" if longest <= 24 else "0.3", name=derivation.model.name, source=source,
        command=command,
        sequence=derivation.model.sequence, digest=digest,
        summary=_escape(derivation.summary(network)), **document_parts(derivation))


def render_fragment(derivation) -> str:
    """The forward and backward steps as one align environment, for Jupyter."""
    parts = document_parts(derivation.as_book())
    rows = [f"{lhs} &= {rhs}" for lhs, rhs, *_ in parts["forward"]]
    rows.append(f"L &= {parts['loss'][1]}")
    rows += [f"{lhs} &= {rhs}" for lhs, _, _, rhs, _ in parts["backward"]]
    rows += [rf"\frac{{\partial L}}{{\partial {name}}} &= {short}" for _, name, short, _ in parts["gradients"]]
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _escape(text: str) -> str:
    for char, replacement in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"),
                              ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("->", r"$\to$"),
                              (">", r"\textgreater{}"), ("<", r"\textless{}"), ("~", r"\textasciitilde{}"),
                              ("^", r"\textasciicircum{}")):
        text = text.replace(char, replacement)
    return text


def render_scalar(chain, standalone: bool, source: str, command: str) -> str:
    """The chain rule for a scalar expression, as the seeds write it out."""
    def tex(expr):
        return ReadableLatexPrinter().doprint(prime_notation(expr))

    def d(top, bottom):
        return rf"\frac{{\partial {top}}}{{\partial {sp.latex(bottom)}}}"

    names = [(sp.latex(name), tex(definition)) for name, definition in chain.names.items()]
    adjoints = [(d("L", name), tex(value)) for name, value in chain.adjoints.items()]
    gradients = []
    for w, route in chain.steps.items():
        symbol = sp.Symbol(w)
        chain_text = " + ".join(d("L", name) + " " + d(sp.latex(name), symbol) if name is not None
                                else d("L", symbol) + r"\big|_{\text{direct}}" for name, _, _ in route)
        product = " + ".join(rf"\left({tex(adjoint)}\right) \cdot {tex(local)}" if adjoint != 1 else tex(local)
                             for _, adjoint, local in route)
        if len(route) == 1 and route[0][0] is None:  # no function to go through: nothing to chain
            chain_text = product = ""
        gradients.append((d("L", symbol), chain_text, product, tex(chain.gradients[w])))
    context = dict(expression=tex(chain.top), names=names, adjoints=adjoints, gradients=gradients,
                   original=tex(chain.expression))
    if not standalone:
        return _environment.get_template("chain_rule_fragment.tex.j2").render(**context)
    return _environment.get_template("chain_rule.tex.j2").render(source=source, command=command, **context)
