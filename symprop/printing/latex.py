"""The LaTeX backend: SymPy's LatexPrinter, in the matrix notation of a textbook.

Rows are samples: X is N × inputs, z_i = X W_i^T + 1 b_i^T. Products of matrices
written ⊙ are elementwise, as are functions and powers applied to matrices;
1 is a vector of ones, so 1^T A sums the rows of A and A 1 its columns.
"""

from __future__ import annotations

import functools
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..ops.registry import OPS
from .statements import StatementPrinter

LONG_NUMERATOR = 150  # characters of LaTeX: a fraction's numerator past it cannot stay on one line, written out

_STEMS = {"x": "X", "w": "W", "e": "E", "shifted": r"\tilde{z}", "total": r"\ell", "tmp": r"\tau", "dz": r"\delta",
          # a norm's values as books write them: x̃ = x − μ, σ² and σ⁻¹ = 1/√(σ² + ε), x̂, its scale γ and shift β
          "xc": r"\tilde{x}", "var": r"\sigma^{2}", "rstd": r"\sigma^{-1}", "xhat": r"\hat{x}", "g": r"\gamma",
          "be": r"\beta",
          # attention's, as "Attention Is All You Need" writes them: the heads' Q, K and V, their scores S, W^O
          "qkv": r"[Q\,K\,V]", "qh": "Q", "kh": "K", "vh": "V", "scores": "S", "Wo": "W^{O}", "bo": "b^{O}"}


@functools.cache
def _stems() -> dict[str, str]:
    """How a book writes the names of values: these stems, and each op's own (its results' stem -> its letter)."""
    return {**_STEMS, **{op.stem: op.latex_stem for op in OPS.values() if getattr(op, "latex_stem", "")}}


def atomic(text: str) -> bool:
    """Nothing outside brackets but one term: z_{0}, e^{...}, \\sigma\\left(...\\right), \\frac{a}{b}."""
    depth = 0
    for char in text:
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif depth == 0 and char in " +-=,/*":
            return False
    return bool(text)


def latex_name(name: str, dense_target: bool = True) -> str:
    """z0 → z_{0}, w2 → W_{2}, dz1 → \\delta_{1}, dh1 → \\bar{h}_{1}, shifted → \\tilde{z}."""
    if re.fullmatch(r"\d+(\.\d+)?", name):  # a number the document names (a sequence's length, a scale)
        return name
    copy = re.fullmatch(r"(.+_dot)_(\d+)", name)
    if copy:  # a second tangent of one name (a sum's and its scaled value's): ṡ^(1)
        return f"{{{latex_name(copy.group(1), dense_target)}}}^{{({copy.group(2)})}}"
    if name.endswith("_dot"):  # a tangent: ż_0, the derivative of z_0 along the direction v
        head, rest = _head(latex_name(name[:-4], dense_target))
        return rf"\dot{{{head}}}{rest}"
    if name.startswith("v_"):  # the direction of a parameter: v_{W_0}
        return rf"v_{{{latex_name(name[2:], dense_target)}}}"
    match = re.fullmatch(r"([A-Za-z]+?)(\d*)(?:_(\d+))?", name)
    if not match and "_" in name:  # xc_n1_0: x − μ of norm n1 in layer 0, written xc_{n1,0}
        head, *rest = name.split("_")
        inner = latex_name(head, dense_target)
        subscript = ",".join(part if part.isdigit() else rf"\mathrm{{{part}}}" for part in rest if part)
        if not subscript:
            return inner
        return f"{{{inner}}}{{}}_{{{subscript}}}" if "_" in inner else f"{inner}_{{{subscript}}}"
    if not match:
        return rf"\mathrm{{{name}}}"
    stem, index, copy = match.groups()
    if stem == "t":
        base = "T" if dense_target else "t"
    elif stem in _stems():
        base = _stems()[stem]
    elif stem.startswith("d") and len(stem) > 1:  # an adjoint: dh1 is h̄_1 = ∂L/∂h_1
        inner = latex_name(stem[1:], dense_target)
        return rf"\bar{{{inner}}}" + (f"_{{{index}}}" if index else "") + (f"^{{({copy})}}" if copy else "")
    elif len(stem) == 1:
        base = stem
    else:
        base = rf"\mathrm{{{stem}}}"
    return base + (f"_{{{index}}}" if index else "") + (f"^{{({copy})}}" if copy else "")


def _head(text: str) -> tuple[str, str]:
    """(the letter, its scripts) of a name: (\\delta, _{1}) of \\delta_{1}, for an accent on the letter alone."""
    match = re.match(r"(\\[a-z]+\{[^{}]*\}|\\[A-Za-z]+|[A-Za-z])(.*)$", text)
    return (match.group(1), match.group(2)) if match else (text, "")


def _transposed(text: str, transpose: bool) -> str:
    if not transpose:
        return text
    if text.startswith(r"\frac"):  # (a/b)^T, not a/b with b transposed to the eye
        text = rf"\left({text}\right)"
    scripted = "^" in text and not text.endswith(")")  # W_{1}^{(0)}{}^T: TeX takes one ^ per atom
    return text + (r"{}^{\top}" if scripted else r"^{\top}")


class ReadableLatexPrinter(LatexPrinter):
    """SymPy's LaTeX, with sums ordered as books write them: y - t, not -t + y."""

    def _as_ordered_terms(self, expr, order=None):
        return sorted(super()._as_ordered_terms(expr, order=order), key=lambda t: t.could_extract_minus_sign())


class LatexBackendPrinter(StatementPrinter, LatexPrinter):
    backend = "latex"
    numbers_as_floats = False
    code = False

    def __init__(self, shapes: dict | None = None, dense_target: bool = True, long_fractions: bool = False):
        # long_fractions: a long numerator over a short denominator prints as 1/N (...), which reads inline
        super().__init__({"mul_symbol": None, **({"long_frac_ratio": 2} if long_fractions else {})})
        self._shapes = shapes or {}  # symbol -> shape, to tell matrices from scalars
        self._dense_target = dense_target
        self._expanded: dict[sp.Symbol, str] = {}  # symbol -> its definition, printed in its place
        self._sums: dict[sp.Symbol, sp.Expr] = {}  # expanded symbols defined as a + b: in a sum, no parentheses
        self.contractions: set[sp.Symbol] = set()  # expanded matrix products: parenthesized beside ⊙

    # -- names and shapes ----------------------------------------------------------
    def _print_Symbol(self, expr, style="plain"):
        if expr in self._expanded:
            return self._expanded[expr]
        if expr in self._inline:
            return self._inline[expr]
        if expr.name.startswith("__ones_"):  # a bias broadcast over the rows: 1 b^T
            return rf"\mathbf{{1}} {latex_name(expr.name[len('__ones_'):], self._dense_target)}^{{\top}}"
        return latex_name(expr.name, self._dense_target)

    def _ndim(self, expr) -> int:
        return max((len(self._shapes.get(s, ())) for s in expr.free_symbols), default=0)

    def _is_matrix(self, expr) -> bool:
        return any(d != 1 for s in expr.free_symbols for d in self._shapes.get(s, ()))

    # -- arithmetic ----------------------------------------------------------------
    def _print_Add(self, expr, order=None):
        while self._sums and expr.free_symbols & self._sums.keys():  # x + f(x) + g(...): one flat sum
            expr = expr.xreplace(self._sums)
        ndim = self._ndim(expr)
        if ndim == 2:  # a vector added to a matrix is added to each row: 1 b^T
            swaps = {s: sp.Symbol("__ones_" + s.name) for s in expr.args
                     if s.is_Symbol and len(self._shapes.get(s, ())) == 1}
            if swaps:
                return super()._print_Add(expr.xreplace(swaps), order)
        return super()._print_Add(expr, order)

    def _print_Mul(self, expr):
        """Elementwise products of matrices as ⊙; numbers and scalars as usual."""
        numerator, denominator = [], []
        for factor in sp.Mul.make_args(expr):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent < 0:
                denominator.append(base ** -exponent)
            else:
                numerator.append(factor)
        matrices = [f for f in numerator if self._is_matrix(f)]
        if len(matrices) < 2:
            return super()._print_Mul(expr)
        scalars = sp.Mul(*(f for f in numerator if not self._is_matrix(f)))
        body = r" \odot ".join(self._factor(f) for f in matrices)
        if scalars == -1:
            body = "- " + body
        elif scalars != 1:
            body = self.parenthesize(scalars, 50) + " " + body
        if denominator:
            under = self._print(sp.Mul(*denominator))
            ratio = self._settings.get("long_frac_ratio")
            if ratio and len(body) > max(ratio * len(under), LONG_NUMERATOR):  # 1/N (...): it breaks across lines
                return rf"\frac{{1}}{{{under}}} ({body})"
            return rf"\frac{{{body}}}{{{under}}}"
        return body

    def _factor(self, factor) -> str:
        if factor in self.contractions:
            return rf"\left({self._print(factor)}\right)"
        return self.parenthesize(factor, 50)

    def _print_Heaviside(self, expr, exp=None):
        relation = r"\ge" if expr.args[1] == 1 else ">"  # H(u, 1) is 1 at u = 0
        return rf"\mathbf{{1}}_{{{self._print(expr.args[0])} {relation} 0}}"

    def _print_Piecewise(self, expr):
        if len(expr.args) == 2 and expr.args[0][0] == 1 and expr.args[1] == (0, True):
            return rf"[{self._print(expr.args[0][1])}]"  # an indicator: 1 where the condition holds
        return super()._print_Piecewise(expr)

    # -- statements ----------------------------------------------------------------
    def parenthesize_operand(self, expr, text):
        return text if atomic(text) else rf"\left({text}\right)"

    def output(self, statement):
        text = super().output(statement)
        for opening, closing in ((r"\left(", r"\right)"), ("(", ")")):
            if statement.expr in self._expanded and text.startswith(opening) and text.endswith(closing) \
                    and atomic(text):
                return text[len(opening):-len(closing)]  # a lone expanded name needs no brackets
        return text

    def reshape(self, text, shape):
        return text

    # -- what the ops' spellings share ---------------------------------------------------------------------------
    transposed = staticmethod(_transposed)
    atomic = staticmethod(atomic)

    def indexed(self, text: str, indices) -> str:
        """An entry in index notation, text_{n,c,2x + i}: a name with a subscript of its own, or an expression, in
        brackets ((W_{conv})_{o,c,i,j})."""
        base = text if "_" not in text and atomic(text) else rf"\left({text}\right)"
        return f"{base}_{{{','.join(indices)}}}"

    def index_sum(self, below, body: str, out) -> str:
        """[Σ_{below} body]_{out}: the tensor whose `out` entry is that sum (`below`: the summed indices, or one
        condition per line); no Σ where nothing is summed."""
        rows = r" \\ ".join(below)
        summed = (rf"\sum_{{\substack{{{rows}}}}} " if len(below) > 1 and "=" in rows else
                  rf"\sum_{{{','.join(below)}}} ") if below else ""
        return rf"\left[{summed}{body}\right]_{{{','.join(out)}}}"

    def broadcast(self, text, shape, keep_dtype=False):
        return text

    def shape_text(self, shape) -> str:
        return r" \times ".join(self.doprint(d) for d in shape) or "1"
