"""The MathML backend: SymPy's MathMLPresentationPrinter, in the notation of the LaTeX derivation.

Rows are samples; z̄ is ∂L/∂z; products of matrices are written as books write them (X Wᵀ), sums over axes as
Σ. It prints the equations of the HTML derivation, which browsers render with no script and no network.
"""

from __future__ import annotations

import re
from html.entities import html5
from xml.dom.minidom import parseString

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from ..ops.registry import spelling
from .statements import StatementPrinter

_ENTITY = re.compile(r"&([A-Za-z]+);")
_XML = {"amp", "lt", "gt", "quot", "apos"}

class MathMLBackendPrinter(StatementPrinter, MathMLPresentationPrinter):
    backend = "mathml"
    numbers_as_floats = False
    code = True  # contractions inlined where the code inlines them: one equation per line of code

    def __init__(self):
        super().__init__({"mul_symbol": None})
        self.expanded: dict[sp.Symbol, str] = {}  # symbol -> its definition, printed in its place

    # -- names -----------------------------------------------------------------------------------
    def _fragment(self, text: str):
        # SymPy writes &InvisibleTimes; and the like, which XML alone does not define
        text = _ENTITY.sub(lambda m: html5.get(m.group(1) + ";", m.group(0)) if m.group(1) not in _XML else m.group(0),
                           text)
        return parseString(f'<mrow xmlns="http://www.w3.org/1998/Math/MathML">{text}</mrow>').documentElement

    def _print_Symbol(self, sym, style="plain"):
        if sym in self.expanded:
            return self._fragment(self.expanded[sym])
        if sym in self._inline:
            return self._fragment(self._inline[sym])
        name = sym.name
        if name.endswith("_dot"):  # a tangent: z0_dot is ż₀, how z₀ moves along the direction v
            over = self.dom.createElement("mover")
            over.setAttribute("accent", "true")
            over.appendChild(self._print_Symbol(sp.Symbol(name[:-4])))
            dot = self.dom.createElement("mo")
            dot.appendChild(self.dom.createTextNode("\u02d9"))
            over.appendChild(dot)
            return over
        if name.startswith("d") and len(name) > 1 and name[1].isalpha():  # an adjoint: dz1 is z̄₁ = ∂L/∂z₁
            over = self.dom.createElement("mover")
            over.setAttribute("accent", "true")
            over.setAttribute("class", "adjoint")  # the page draws its bar bold, in a colour of its own
            over.appendChild(self._print_Symbol(sp.Symbol(name[1:])))
            bar = self.dom.createElement("mo")
            bar.appendChild(self.dom.createTextNode("\u203e"))
            over.appendChild(bar)
            return over
        return MathMLPresentationPrinter._print_Symbol(self, sym, style)

    def _print_Heaviside(self, expr):  # 1 where the argument is positive (or at 0, for H(u, 1))
        sub = self.dom.createElement("msub")
        one = self.dom.createElement("mn")
        one.appendChild(self.dom.createTextNode("1"))
        sub.appendChild(one)
        condition = self.dom.createElement("mrow")
        condition.appendChild(self._print(expr.args[0]))
        relation = self.dom.createElement("mo")
        relation.appendChild(self.dom.createTextNode("\u2265" if expr.args[1] == 1 else ">"))
        condition.appendChild(relation)
        zero = self.dom.createElement("mn")
        zero.appendChild(self.dom.createTextNode("0"))
        condition.appendChild(zero)
        sub.appendChild(condition)
        return sub

    def _print_Function(self, expr):
        """A function as its op spells it, at the top of an equation too (SymPy's doprint dispatches the top expression
        itself, past StatementPrinter._print)."""
        if spelling(type(expr), self.backend) is not None:
            return StatementPrinter._print(self, expr)
        return super()._print_Function(expr)

    def call(self, function: str, args):
        return self._call(function, args)

    def _call(self, name: str, args):
        row = self.dom.createElement("mrow")
        function = self.dom.createElement("mi")
        function.appendChild(self.dom.createTextNode(name))
        row.appendChild(function)
        fenced = self.dom.createElement("mrow")
        for text, part in (("(", None), *((None, a) for a in args), (")", None)):
            if part is None:
                bracket = self.dom.createElement("mo")
                bracket.appendChild(self.dom.createTextNode(text))
                fenced.appendChild(bracket)
            else:
                fenced.appendChild(self._print(part))
        row.appendChild(fenced)
        return row

    # -- statements: MathML text -------------------------------------------------------------------
    def parenthesize_operand(self, expr, text):
        return text if expr.is_Symbol or expr.is_Function else f"<mrow><mo>(</mo>{text}<mo>)</mo></mrow>"

    @staticmethod
    def transposed(text: str, transpose: bool) -> str:
        return f"<msup><mrow>{text}</mrow><mo>\u22a4</mo></msup>" if transpose else text

    def named_call(self, name: str, *texts) -> str:
        """name(texts...), a function applied (MathML text)."""
        return f"<mrow><mi>{name}</mi><mo>(</mo>{'<mo>,</mo>'.join(texts)}<mo>)</mo></mrow>"

    def indexed(self, text: str, indices) -> str:
        """An entry in index notation, text with the subscript n,c,2x+i (an expression or a subscripted name in
        brackets)."""
        base = text if "<msub" not in text and text.count("<m") <= 1 else f"<mrow><mo>(</mo>{text}<mo>)</mo></mrow>"
        return f"<msub><mrow>{base}</mrow><mrow>{'<mo>,</mo>'.join(map(_index, indices))}</mrow></msub>"

    def index_sum(self, below, body: str, out) -> str:
        """[Σ_{below} body]_{out}: the tensor whose `out` entry is that sum."""
        summed = f"<munder><mo>\u2211</mo><mrow>{'<mo>,</mo>'.join(map(_index, below))}</mrow></munder>" \
            if below else ""
        bracket = f"<mrow><mo>[</mo>{summed}{body}<mo>]</mo></mrow>"
        return f"<msub>{bracket}<mrow>{'<mo>,</mo>'.join(map(_index, out))}</mrow></msub>"

    def reshape(self, text, shape):
        return text

    def broadcast(self, text, shape, keep_dtype=False):
        return text

    def shape_text(self, shape) -> str:
        return " \u00d7 ".join(str(d) for d in shape) or "1"


def _index(text: str) -> str:
    """An index as MathML: 2x + i is <mn>2</mn><mi>x</mi><mo>+</mo><mi>i</mi>."""
    tokens = re.findall(r"\d+|[A-Za-z]|[+=-]", text)
    return "<mrow>" + "".join(f"<mn>{t}</mn>" if t.isdigit() else f"<mi>{t}</mi>" if t.isalpha() else f"<mo>{t}</mo>"
                              for t in tokens) + "</mrow>"
