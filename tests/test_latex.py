"""The LaTeX derivation: it compiles, it shows something, and it says what the seeds say."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner
from conftest import GOLDEN, committed

import symprop as sy
from symprop.cli import main
from symprop.derivation import Derivation
from symprop.printing.latex import ReadableLatexPrinter
from symprop.scalar import chain_rule, prime_notation

ROOT = Path(__file__).resolve().parent.parent
TEX = committed("*.tex")


def need(tool: str) -> str:
    """The tool's path; CI installs it (.ci/run), so there its absence is a failure."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed; .ci/run installs it with apt-get")
        pytest.skip(f"{tool} is not installed (Debian: apt-get install texlive-latex-base poppler-utils)")
    return path


def plain(document: str) -> str:
    """The document without the \\fitto{width}{$\\displaystyle ...$} that scales a long formula to the line."""
    return re.sub(r"\\fitto\{[^}]*\}\{\$\\displaystyle (.*?)\$\}", r"\1", document)


def compile_tex(tex: Path, folder: Path) -> Path:
    shutil.copy(tex, folder)
    result = subprocess.run([need("pdflatex"), "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=folder, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    return folder / tex.with_suffix(".pdf").name


@pytest.mark.parametrize("tex", TEX, ids=lambda p: p.stem)
def test_every_committed_tex_compiles_with_nothing_overfull(tex, tmp_path):
    assert compile_tex(tex, tmp_path).stat().st_size > 10_000
    log = (tmp_path / tex.with_suffix(".log").name).read_text(errors="replace")
    overfull = [line for line in log.splitlines() if line.startswith("Overfull")]
    assert not overfull, overfull  # no line runs off the page, no table past its end


def test_a_rendered_page_has_content(tmp_path):
    pdf = compile_tex(GOLDEN / "multiclass_classifier.tex", tmp_path)
    pdftoppm = need("pdftoppm")
    subprocess.run([pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", pdf, tmp_path / "page"],
                   check=True)
    png = (tmp_path / "page.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    subprocess.run([pdftoppm, "-gray", "-r", "50", "-f", "1", "-l", "1", "-singlefile", pdf, tmp_path / "page"],
                   check=True)
    pgm = (tmp_path / "page.pgm").read_bytes()
    width, height = map(int, re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", pgm).groups())
    pixels = pgm[-width * height:]
    inked = sum(1 for value in pixels if value < 200)
    assert 0.005 < inked / len(pixels) < 0.5, "the page should hold text, neither blank nor black"


def test_seed_neuron_closed_form_is_the_textbook_one():
    """dL/dw = 2(y − t)·a′(w·x)·x, from the chain rule's LaTeX."""
    w, x, t, u = sp.symbols("w x t u")
    a = sp.Function("a")
    expected = 2 * (a(w * x) - t) * sp.Subs(sp.Derivative(a(u), u), u, w * x) * x
    document = chain_rule("(a(w*x) - t)**2", "w").to_latex()
    closed = re.search(r"\\section\*\{Closed forms\}.*?\\frac\{\\partial L\}\{\\partial w\} &= (.*?)\n", document,
                       re.S).group(1)
    assert closed == ReadableLatexPrinter().doprint(prime_notation(sp.factor_terms(expected)))
    assert "a'\\left(w x\\right)" in closed
    # and the steps on the way: y = a(w x), dL/dy = 2(y − t), dL/dw = dL/dy · dy/dw
    assert r"y &= a{\left(w x \right)}" in document
    assert r"\frac{\partial L}{\partial y} &= 2 \left(y - t\right)" in document
    assert r"\frac{\partial L}{\partial y} \frac{\partial y}{\partial w}" in document


def test_network_neuron_matches_its_matrix_form():
    """For y = σ(x W^T) and MSE: δ = 2(h − T)/N ⊙ σ′(z), σ′(z) = h ⊙ (1 − h), and ∂L/∂W = δ^T X."""
    document = plain((GOLDEN / "seed_neuron.tex").read_text())
    assert r"z_{0} &= X W_{0}^{\top}" in document and r"h_{1} &= \sigma\left(z_{0}\right)" in document
    assert r"\delta_{0} &= \frac{2 h_{1} - 2 T}{N} \odot \sigma'{\left(z_{0} \right)}" in document
    assert r"\sigma'{\left(z_{0} \right)} = h_{1} \odot \left(1 - h_{1}\right)" in document
    assert r"&= \frac{2 h_{1} \odot \left(1 - h_{1}\right) \odot \left(h_{1} - T\right)}{N}" in document
    assert r"\frac{\partial L}{\partial W_{0}} &= \delta_{0}^{\top} X" in document
    assert r"\frac{d}{dz} \sigma\left(z\right) = \left(1 - \sigma\left(z\right)\right) \sigma\left(z\right)" \
        in document


def test_cross_entropy_derivation_shows_the_step_and_the_reason():
    derivation = sy.Derivation(sy.load_spec(ROOT / "examples" / "backprop_three_layers.toml"))
    document = plain(derivation.to_latex())
    assert r"\delta_{2} &= \frac{E}{N s} - \frac{T}{N} \\ &= \frac{p - T}{N}" in document
    assert r"\sum_k T_{nk} = 1" in document
    assert "shifts the row maximum out" in document and "rowmax" not in document  # the code's safeguard: a note
    assert r"\delta_{1} &= \delta_{2} W_{2}" in document  # no activation between: δ passes through W
    assert r"\frac{\partial L}{\partial b_{2}} &= \mathbf{1}^{\top} \delta_{2}" in document


def test_symbols_agree_with_the_generated_code():
    """Every name in the table of symbols is a variable of the NumPy module."""
    derivation = sy.Derivation(sy.load_spec(ROOT / "examples" / "iris_mlp.toml"))
    document = derivation.to_latex()
    code = derivation.render("numpy")
    table = re.findall(r"^\$(.*?)\$ & \\texttt\{(.*?)\} \\\\$", document, re.M)
    assert len(table) > 10
    for symbol, name in table:
        name = name.replace(r"\_", "_")
        assert re.search(rf"\b{name}\b", code), f"{name} ({symbol}) is not in the generated code"
        assert symbol in document.split(r"\section*{Symbols and code}")[0], f"{symbol} is not used"


def test_jupyter_and_python_api():
    derivation = sy.Derivation(sy.Model(sy.Sequential(sy.Linear(2, 1), sy.Sigmoid()), sy.BCELoss()))
    fragment = derivation._repr_latex_()
    assert fragment.startswith(r"\begin{align*}")
    assert r"\delta_{0} &= \frac{h_{1} - T}{N}" in fragment  # σ − t: the book's form, the clamp left to the code
    assert derivation.to_latex().startswith("% Generated by symprop") and r"\documentclass" in derivation.to_latex()
    assert chain_rule("sin(k*u)", "k")._repr_latex_().startswith(r"\begin{align*}")


def test_cli_writes_tex_and_pdf(tmp_path):
    need("pdflatex")
    spec = ROOT / "examples" / "regression.toml"
    result = CliRunner().invoke(main, ["derive", str(spec), "--target", "latex", "--pdf", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regression.pdf", "regression.tex"]
    assert (tmp_path / "regression.pdf").read_bytes().startswith(b"%PDF")


def test_cli_without_pdflatex_still_writes_the_tex(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["derive", "--expr", "(a(w*x) - t)**2", "--wrt", "w", "--pdf",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["chain_rule.tex"]
    notes = [line for line in result.stderr.splitlines() if "pdflatex" in line]
    assert len(notes) == 1 and "not installed" in notes[0]


def test_scalar_bce_of_a_sigmoid_is_the_textbook_gradient():
    """−[t log σ(wx) + (1 − t) log(1 − σ(wx))] differentiated by w is x·(σ(wx) − t), as books print it."""
    from symprop.ops.sigmoid import sigmoid

    w, x, t = sp.symbols("w x t")
    result = sy.derive("-(t*log(sigmoid(w*x)) + (1-t)*log(1-sigmoid(w*x)))", "w")["w"]
    assert result == x * (sigmoid(w * x) - t), result


@pytest.mark.parametrize("example,formula", [
    ("binary_classifier", r"-\frac{1}{|Y|} \sum \left[T \odot \log Y + (1 - T) \odot \log(1 - Y)\right]"),
    ("iris_mlp", r"-\frac{1}{N} \sum \log \operatorname{softmax}(Y)_{n, t_n}"),
    ("regression", r"\frac{1}{|Y|} \sum (Y - T)^{2}"),
])
def test_each_loss_is_shown_as_a_book_writes_it(example, formula):
    document = plain((GOLDEN / f"{example}.tex").read_text())
    assert f"L = {formula}" in document.replace(r"\[ L = ", "L = "), document[:3000]


BAR = re.compile(r"\\bar\{(?:[^{}]|\{[^{}]*\})*\}(?:_\{(?:[^{}]|\{[^{}]*\})*\})?(?:\^\{\(\d+\)\})?|\\delta_\{\d+\}")


@pytest.mark.parametrize("tex", TEX, ids=lambda p: p.stem)
def test_every_cotangent_used_is_defined_before(tex):
    """Every z̄ (and δ) on the right of a row was the left of a row above it."""
    document = plain(tex.read_text())
    defined: set[str] = set()
    for line in document.splitlines():
        if "&=" not in line:
            continue
        lhs, _, rhs = line.partition("&=")
        used = set(BAR.findall(rhs)) - defined
        assert not used, f"{tex.name}: {lhs.strip()} uses {used}, defined nowhere above"
        defined |= set(BAR.findall(lhs))


def _rows_and_glossary(document: str):
    """The aligned rows (lhs, rhs) in order, and the symbols of the table of symbols and code."""
    rows = [line.partition("&=")[::2] for line in document.splitlines() if "&=" in line]
    glossary = re.findall(r"^\$(.+?)\$ & \\texttt\{", document, flags=re.M)
    return rows, glossary


def _uses(symbol: str, text: str) -> bool:
    """`symbol` appears in `text` as itself: not inside a longer name (z_{1} in z_{1}^{(0)}, s in \\mathbf)."""
    return re.search(r"(?<![\\\w])" + re.escape(symbol) + r"(?![\w^{])", text) is not None


@pytest.mark.parametrize("tex", TEX, ids=lambda p: p.stem)
def test_every_symbol_used_is_defined_before(tex):
    """Each symbol of the table that a row's right side reads is an input, a parameter, or a row's left above."""
    document = plain(tex.read_text())
    rows, _ = _rows_and_glossary(document)
    code = (tex.parent / f"{tex.stem}_numpy.py").read_text()
    given = set(re.findall(r"^    (\w+) = params\[", code, flags=re.M)) | {"x", "t", "N"}
    table = re.findall(r"^\$(.+?)\$ & \\texttt\{(.+?)\}", document, flags=re.M)
    defined = {symbol for symbol, name in table if name.replace("\\_", "_") in given}
    for lhs, rhs in rows:
        used = {symbol for symbol, _ in table if symbol not in defined and _uses(symbol, rhs)}
        assert not used, f"{tex.name}: {lhs.strip()[:60]} reads {used}, defined nowhere above"
        defined |= {symbol for symbol, _ in table if _uses(symbol, lhs)}


ABSOLUTE_AFTER = """name = "after_{kind}"
inputs = 3
[[layers]]
type = "linear"
outputs = 4
[[layers]]
type = "{kind}"
[[layers]]
type = "linear"
outputs = 4
[[layers]]
type = "elementwise"
expr = "Abs(z)"
[[layers]]
type = "linear"
outputs = 2
[loss]
type = "mse"
"""


def test_an_absolute_value_after_each_activation_renders_every_target():
    """An elementwise |z| after a ReLU ended in a traceback in the document: f′ of a scalar function was taken with
    SymPy's complex z (re/im parts, then substituted into). Every activation of the op table, every target."""
    from symprop.declare.spec import loads
    from symprop.ops.registry import activations, toml_layers

    kinds = sorted(kind for kind in toml_layers() if kind in activations())
    assert {"relu", "tanh", "gelu"} <= set(kinds)
    for kind in kinds:
        derivation = sy.derive_network(loads(ABSOLUTE_AFTER.format(kind=kind)))
        for target in ("numpy", "torch", "latex", "html"):
            assert derivation.render(target), (kind, target)
        assert r"\operatorname{sign}" in derivation.render("latex"), kind


HUBER_BY_HAND = """name = "huber_by_hand"
inputs = 4
[[layers]]
type = "linear"
outputs = 8
[[layers]]
type = "tanh"
[[layers]]
type = "linear"
outputs = 2
[loss]
type = "elementwise"
expr = "Min(Abs(y - t), 1)*(Abs(y - t) - Min(Abs(y - t), 1)/2)"
"""


def test_a_long_closed_form_in_full_breaks_across_lines(tmp_path):
    """A Huber loss written with Min(Abs(y - t), 1): its gradients in full were fractions over N whose numerators ran
    past the page (two overfull boxes); a numerator that long is written 1/N (...), which TeX breaks (issue 26,
    item 4)."""
    from symprop.declare.spec import loads

    tex = tmp_path / "source" / "huber_by_hand.tex"
    tex.parent.mkdir()
    tex.write_text(sy.derive_network(loads(HUBER_BY_HAND)).render("latex"))
    compile_tex(tex, tmp_path)
    log = (tmp_path / "huber_by_hand.log").read_text(errors="replace")
    assert not [line for line in log.splitlines() if line.startswith("Overfull")]
    assert r"\frac{1}{N} ((- \frac{1}{2})" in tex.read_text()


def test_the_transformer_document_uses_the_books_names_and_explains_its_count():
    """It wrote xhat_{n1,0}, be and an unexplained factor 6 (the sequence's length, from the mean pool; issue 26,
    item 4 in part)."""
    document = (GOLDEN / "transformer_classifier.tex").read_text()
    assert r"\hat{x}_{\mathrm{n1},0}" in document and r"\beta_{1}^{(0)} + \gamma_{1}^{(0)}" in document
    assert r"\mathrm{xhat}" not in document and r"\mathrm{be}" not in document
    assert r"$h_{1}$ is the mean over the sequence's $6$ positions" in document
    assert r"$S_{0} = Q K^{\top} / \sqrt{8}$, $8$ the width of a head" in document  # the √2/4
    # the norms' x − μ, σ² and σ⁻¹, attention's Q, K, V, scores and W^O: no code names (issue 26, item 4)
    assert r"\tilde{x}_{\mathrm{n1},0} &= " in document and r"\sigma^{-1}_{\mathrm{n1},0} &= " in document
    assert r"\sigma^{2}_{\mathrm{n1},0} &= " in document and r"S_{0} &= " in document and r"W^{O}_{0}" in document
    assert "\n" + r"[Q\,K\,V]_{0} &= " in document and "\n" + r"Q_{0} &= " in document
    for code in ("rstd", "xc", "var", "qkv", "qh", "kh", "vh", "scores", "Wo", "bo"):
        assert rf"\mathrm{{{code}}}" not in document, code


@pytest.mark.parametrize("example", ["iris_classifier", "regression", "transformer_classifier", "digits_cnn"])
def test_the_hessian_vector_product_is_in_the_document_when_derived(example, tmp_path):
    """With hvp, the document shows the product's steps and each parameter's (∇²L v), says how a step function's
    derivative is taken, shows the Gauss–Newton product's steps and (G v), and compiles with nothing overfull;
    without it, it has no such section."""
    model = sy.load_spec(ROOT / "examples" / f"{example}.toml")
    first_order = Derivation(model).render("latex")
    assert "Hessian-vector" not in first_order
    document = Derivation(model, hvp=True).render("latex")
    before = r"\section*{The Hessian"  # the first-order sections read the same with second order derived
    assert document[:document.index(before)] == first_order[:first_order.index(r"\section*{", document.index(before))]
    assert r"\section*{The Hessian-vector product}" in document and r"(\nabla^{2} L\, v)_{" in document
    assert "is taken as $0$" in document
    assert r"\section*{The Gauss--Newton product}" in document and r"(G v)_{" in document and "\nq &= " in document
    tex = tmp_path / "source" / f"{example}.tex"
    tex.parent.mkdir()
    tex.write_text(document)
    assert compile_tex(tex, tmp_path).exists()
    log = (tmp_path / f"{example}.log").read_text(errors="replace")
    assert not [line for line in log.splitlines() if line.startswith("Overfull")]


TEXTBOOK_HESSIANS = {  # a one-layer model -> what its Hessian section must read
    "linear regression": (lambda: sy.Model(sy.Sequential(sy.Linear(3, 1)), sy.MSELoss(), inputs=3),
                          [r"\nabla^{2}_{W_{0}} L &= \frac{2}{N}\, X^{\top} X", r"\nabla^{2}_{b_{0}} L &= 2"]),
    "logistic regression": (lambda: sy.Model(sy.Sequential(sy.Linear(3, 1), sy.Sigmoid()), sy.BCELoss(), inputs=3),
                            [r"\frac{1}{N} X^{\top} \operatorname{diag}\left(h_{1} \odot \left(1 - h_{1}\right)"
                             r"\right) X"]),
    "softmax regression": (lambda: sy.Model(sy.Sequential(sy.Linear(3, 4)), sy.CrossEntropyLoss(), inputs=3),
                           [r"\frac{1}{N} \left(\operatorname{diag}\left(p\right) - p p^{\top}\right)",
                            r"\sum_{n} H_{n} \otimes x_{n} x_{n}^{\top}"]),
}


@pytest.mark.parametrize("name", TEXTBOOK_HESSIANS)
def test_one_layer_models_get_the_textbook_hessian_in_closed_form(name, tmp_path):
    """Derived, not written: the loss's Hessian in z read off δ's tangent (2/N; σ(1 − σ)/N; (diag(p) − ppᵀ)/N),
    then the blocks of W and b; the document compiles with nothing overfull."""
    make, rows = TEXTBOOK_HESSIANS[name]
    document = Derivation(make(), hvp=True).render("latex")
    section = document[document.index(r"\section*{The Hessian}"):document.index(r"\section*{The Hessian-vector")]
    for row in rows:
        assert row in section, section
    tex = tmp_path / "source" / "hessian.tex"
    tex.parent.mkdir()
    tex.write_text(document)
    assert compile_tex(tex, tmp_path).exists()
    log = (tmp_path / "hessian.log").read_text(errors="replace")
    assert not [line for line in log.splitlines() if line.startswith("Overfull")]


def test_deeper_models_show_the_hessian_vector_product_only():
    model = sy.Model(sy.Sequential(sy.Linear(3, 4), sy.Tanh(), sy.Linear(4, 2)), sy.MSELoss(), inputs=3)
    document = Derivation(model, hvp=True).render("latex")
    assert r"\section*{The Hessian}" not in document and r"\section*{The Hessian-vector product}" in document
    assert r"\dot{h}_{1}" in document  # the tangents, named after their values


def test_a_loss_with_a_penalty_gets_no_closed_form_hessian_of_its_output_alone(tmp_path):
    """With an L2 penalty the Hessian has the penalty's 2λI besides the output's part: the closed form read off δ's
    tangent would leave it out, so the document shows the product's steps only."""
    spec = tmp_path / "ridge.toml"
    spec.write_text('name = "ridge"\ninputs = 3\n\n[[layers]]\nname = "fc"\ntype = "linear"\noutputs = 1\n\n'
                    '[loss]\ntype = "mse"\nl2 = { "fc.weight" = 0.1 }\n')
    document = Derivation(sy.load_spec(spec), hvp=True).render("latex")
    assert r"\section*{The Hessian}" not in document and r"\section*{The Hessian-vector product}" in document
