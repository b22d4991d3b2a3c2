"""An elementwise expression evaluated in place: one array for the result, and one more for each part that is
itself a chain, where NumPy and eager torch make an array for every operation (GELU's derivative makes eight).

    buf = f0**2            # the deepest chain starts the array
    buf *= -1/2
    buf = np.exp(buf, out=buf)
    buf *= tmp4
    buf_part = erf(tmp4)   # a second chain: one more array, freed once added
    buf_part *= 1/2
    buf += buf_part
"""

from __future__ import annotations

import sympy as sp

WORTH_IT = 4  # arrays an expression makes as written, from which it is evaluated in place


def full_steps(expr: sp.Expr, full) -> int:
    """How many arrays of the whole shape the expression makes as written (`full(e)`: e has the whole shape)."""
    return sum(1 for e in sp.preorder_traversal(expr) if _compound(e) and full(e))


def in_place_lines(printer, name: str, expr: sp.Expr, full) -> list[str]:
    """Lines that leave `expr` in a new array called `name`."""
    return _Evaluation(printer, full).into(name, expr)


def _compound(e) -> bool:
    return isinstance(e, sp.Expr) and not (e.is_Symbol or e.is_number)


class _Evaluation:
    def __init__(self, printer, full):
        self.printer, self.full = printer, full

    def text(self, expr) -> str:
        return self.printer.doprint(expr)

    def into(self, buf: str, expr: sp.Expr) -> list[str]:
        if not (_compound(expr) and self.full(expr)):
            return [f"{buf} = {self.text(expr)}"]
        if expr.is_Add or expr.is_Mul:
            return self._chain(buf, expr)
        if expr.is_Function and len(expr.args) == 1 and _compound(expr.args[0]):
            lines = self.into(buf, expr.args[0])
            step = self.printer.in_place_step(expr)
            if step:
                return lines + [f"{buf} = {self.printer.in_place_call(step[0], buf, *step[1])}"]
            return lines + [f"{buf} = {self.text(expr.func(sp.Symbol(buf, real=True)))}"]
        if expr.is_Pow and expr.exp == 2 and self._chained(expr.base):
            return self.into(buf, expr.base) + [f"{buf} = {self.printer.in_place_call('square', buf)}"]
        return [f"{buf} = {self.text(expr)}"]

    def _chained(self, expr) -> bool:
        return full_steps(expr, self.full) >= 2

    def _chain(self, buf: str, expr: sp.Expr) -> list[str]:
        add = expr.is_Add
        args = list(expr.args)
        chains = [a for a in args if _compound(a) and self.full(a)]
        if not chains:
            return [f"{buf} = {self.text(expr)}"]
        first = max(chains, key=lambda a: full_steps(a, self.full))  # the first of the longest
        lines = self.into(buf, first)
        rest = [a for a in args if a is not first]
        small = [a for a in rest if not (_compound(a) or a.is_Symbol) or not self.full(a)]
        for arg in (a for a in rest if not any(a is s for s in small)):
            if self._chained(arg):
                part = f"{buf}_part"
                lines += self.into(part, arg) + [f"{buf} {'+' if add else '*'}= {part}", f"del {part}"]
            else:
                lines.append(self.printer.step_line(buf, "+" if add else "*", arg))
        if small:
            lines.append(self.printer.step_line(buf, "+" if add else "*", expr.func(*small)))
        return lines
