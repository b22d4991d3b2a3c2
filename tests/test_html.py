"""The HTML derivation, opened in a real headless browser (Debian's chromium): every equation renders (MathML,
no script or network needed), there are no console errors, and each equation and its lines of code are linked
both ways. CI installs chromium (.ci/run); elsewhere the browser tests skip without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import symprop as S

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message)));
window.addEventListener("load", () => {
  const equations = Array.from(document.querySelectorAll(".eq"));
  const lines = Array.from(document.querySelectorAll("pre span"));
  const ids = new Set(equations.map(e => e.dataset.eq));
  const linked = new Set(lines.map(l => l.dataset.eq).filter(id => id !== ""));
  const empty = equations.filter(e => Array.from(e.querySelectorAll("math")).some(m => {
    const box = m.getBoundingClientRect(); return !(box.width > 0 && box.height > 0); })).map(e => e.dataset.eq);
  const first = equations.find(e => linked.has(e.dataset.eq));
  first.dispatchEvent(new Event("mouseenter"));
  const lit = lines.filter(l => l.classList.contains("lit")).length;
  const line = lines.find(l => l.dataset.eq === first.dataset.eq);
  first.dispatchEvent(new Event("mouseleave"));
  line.dispatchEvent(new Event("mouseenter"));
  const report = {
    equations: equations.length, empty: empty, errors: window.__errors,
    unlinked_equations: Array.from(ids).filter(id => !linked.has(id)),
    unlinked_lines: Array.from(linked).filter(id => !ids.has(id)),
    lit_lines: lit, equation_lit_from_code: first.classList.contains("lit"),
    mathml_width: document.querySelector("math").getBoundingClientRect().width,
  };
  const out = document.createElement("pre"); out.id = "probe"; out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI installs it (.ci/run)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return path


def open_in_browser(page: Path) -> dict:
    probed = page.with_name("probed_" + page.name)
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                             "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = result.stdout.split('<pre id="probe">')[1].split("</pre>")[0]
    return json.loads(report.replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("example", ["iris_mlp", "residual_mlp", "transformer_classifier", "char_lm"])
def test_every_equation_renders_and_is_linked_to_its_code(example, tmp_path):
    derivation = S.derive_network(S.load_spec(ROOT / "examples" / f"{example}.toml"))
    (page,) = derivation.write(tmp_path, ("html",))
    report = open_in_browser(page)
    assert report["errors"] == [], report["errors"]
    assert report["equations"] > 5 and report["empty"] == [], report
    assert report["unlinked_equations"] == [] and report["unlinked_lines"] == [], report
    assert report["lit_lines"] >= 1 and report["equation_lit_from_code"], report
    assert report["mathml_width"] > 10  # MathML laid out as math, not as a line of text


def test_the_page_stands_alone(tmp_path):
    derivation = S.derive_network(S.load_spec(ROOT / "examples" / "iris_mlp.toml"))
    text = derivation.render("html")
    assert "<math" in text and "http://" not in text.replace("http://www.w3.org/1998/Math/MathML", "")
    assert "https://" not in text and "<link" not in text and "src=" not in text  # nothing fetched
    assert derivation._repr_html_() == text


def test_the_page_shows_the_code_the_module_runs():
    derivation = S.derive_network(S.load_spec(ROOT / "examples" / "char_lm.toml"))
    page, module = derivation.render("html"), derivation.render("numpy")
    assert 'dtype=params["0.weight"].dtype' in module
    assert "x.dtype" not in page and "dtype=params[&#34;0.weight&#34;].dtype" in page  # ids carry no float dtype


def test_a_page_is_written_again_over_the_one_symprop_wrote(tmp_path):
    """The page's marker is on its second line, after the doctype: symprop knows the page as its own and writes it
    again (it refused to, as a file it had not written)."""
    derivation = S.derive_network(S.load_spec(ROOT / "examples" / "iris_mlp.toml"))
    (page,) = derivation.write(tmp_path, ("html",))
    page.write_text(page.read_text(encoding="utf-8").replace("<title>", "<title>old "), encoding="utf-8")
    assert derivation.write(tmp_path, ("html",)) == [page] and "old " not in page.read_text(encoding="utf-8")


def test_a_function_is_spelled_as_its_op_says_alone_and_inside_an_expression():
    """σ(z) is σ in the page's MathML whether it is an equation's whole right side (tmp0 = σ(z0)) or inside one."""
    import sympy as sp

    from symprop.ops.registry import lookup
    from symprop.printing.mathml import MathMLBackendPrinter

    sigma, z = lookup("sigmoid").sympy, sp.Symbol("z", real=True)
    alone, inside = (MathMLBackendPrinter().doprint(e) for e in (sigma(z), sp.exp(sigma(z))))
    assert "<mi>&#963;</mi>" in alone and "<mi>&#963;</mi>" in inside and "sigmoid" not in alone + inside


def test_a_cotangents_bar_is_visible_at_normal_zoom(tmp_path):
    """The bar over a cotangent was a thin overline, nearly invisible at 100% zoom: w̄₂ = z̄₂ᵀh₁ read as w₂ = z₂ᵀh₁
    (issue 26, item 5). The page draws it bold and red: a screenshot at 100% holds its pixels."""
    pytest.importorskip("PIL")
    from PIL import Image

    derivation = S.derive_network(S.load_spec(ROOT / "examples" / "iris_mlp.toml"))
    (page,) = derivation.write(tmp_path, ("html",))
    shot = tmp_path / "shot.png"
    result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--force-device-scale-factor=1", "--window-size=1000,900", f"--screenshot={shot}",
                             page.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    data = Image.open(shot).convert("RGB").crop((0, 0, 450, 900)).tobytes()  # the derivation's column
    red = sum(1 for r, g, b in zip(data[0::3], data[1::3], data[2::3], strict=True) if r > 140 and g < 110 and b < 110)
    assert red > 60, red  # 8 bars in this page's cotangents, each some 8 px wide and 2 thick, at least


def test_with_hvp_the_page_shows_the_hessian_vector_product_beside_its_code():
    """Derived with hvp, the page has a second part: the hvp's steps (ż, ṗ, δ̇ with a dot) each linked to its lines of
    the generated hvp, and every line that computes a step linked to it."""
    from symprop.derivation import Derivation

    model = S.load_spec(ROOT / "examples" / "iris_classifier.toml")
    page = Derivation(model, hvp=True).render("html")
    assert "<h2>The Hessian-vector product</h2>" in page and "def hvp(params, x, t, v):" in page
    assert 'data-eq="hvp:p_dot"' in page and page.count('id="eq-hvp:p_dot"') == 1
    assert 'v_w0 = v[&#34;0.weight&#34;]' in page or 'v_w0 = v["0.weight"]' in page
    assert "&#729;" in page  # the tangent's dot, ˙
    assert "<h2>" not in Derivation(model).render("html")
