"""User expressions, parsed against an allow-list and never run as Python.

The text is read by `ast.parse`, which only builds a syntax tree; nothing in it is evaluated
or compiled. Every node is checked (numbers, the allowed variables, calls of allowed functions,
and arithmetic), and the SymPy expression is then built from the checked tree node by node,
with SymPy's own operators: there is no `eval`, and no namespace a name could reach beyond.

Some short expressions are too big for SymPy: 10**10**10 has ten billion digits, and
differentiating (y*t + y + t)**40 multiplies out thousands of terms. So are the limits below;
past them an expression is refused with a one-line error, before SymPy is asked to compute it.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings

import sympy as sp

from ..errors import SymPropError
from ..ops.registry import by_function, expression_functions

MAX_LENGTH = 2000  # characters; a longer expression is refused before any parsing
MAX_DEPTH = 40  # nesting of the syntax tree
MAX_ARGUMENTS = 8  # of Max and Min, and how deep they nest
MAX_EXPONENT = 100  # a number used as an exponent: z**100 is fine, z**(10**10) is refused
MAX_NUMBER_BITS = 1024  # numerators and denominators: float64 ends near 2**1024 (about 1.8e308)
MAX_EXPANDED_SIZE = 5000  # symbols in the expression, and in its derivative, multiplied out



def __getattr__(name):
    if name == "FUNCTIONS":  # the allow-list: every elementwise op's SymPy function, by its names in expressions
        return expression_functions()
    raise AttributeError(name)


CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
NOT_DIFFERENTIABLE = {"floor", "ceiling", "ceil", "round", "sign", "Mod", "frac", "Heaviside"}

_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
_APPLY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
_RANGE = "numbers, and their denominators, must stay within about 1e-308 to 1e308, as in float64"
_NOT_FINITE = (sp.zoo, sp.oo, sp.S.NegativeInfinity, sp.nan)


def parse(text: str, variables: tuple[str, ...], *, undefined_functions: bool = False) -> sp.Expr:
    """Parse `text` into a SymPy expression in `variables`.

    With `undefined_functions`, other names called as functions, like `a` in `a(w*x)`,
    become SymPy undefined functions, and other bare names become symbols.
    """
    if not isinstance(text, str):
        raise SymPropError(f"expected an expression as a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SymPropError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise SymPropError("expression is empty")
    source = text.strip()
    try:
        with warnings.catch_warnings():  # "1if z else 2" warns on stderr: the error below says it
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as error:
        raise SymPropError(f"expression {text!r} does not parse: {_reason(error)}") from None
    except (RecursionError, MemoryError):
        raise SymPropError(f"expression is nested deeper than {MAX_DEPTH} levels") from None

    names = {v: sp.Symbol(v) for v in variables}
    _check(tree.body, text, names, undefined_functions, depth=0)
    try:
        expr = _Builder(text, source, names).build(tree.body)
    except SymPropError:
        raise
    except Exception as error:  # SymPy's own evaluation errors, e.g. a function given two arguments
        raise SymPropError(f"expression {text!r} is not valid: {_reason(error)}") from None
    if not isinstance(expr, sp.Expr):
        raise SymPropError(f"expression {text!r} is not a number-valued expression")
    _check_result(expr, text, tuple(variables))
    return expr


def _check(node: ast.AST, text: str, names: dict, undefined: bool, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise SymPropError(f"expression is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise SymPropError(f"expression {text!r}: {node.value!r} is not a number")
        return
    if isinstance(node, (ast.Name, ast.Call)):
        name = node.id if isinstance(node, ast.Name) else getattr(node.func, "id", "")
        if name.startswith("_"):
            raise SymPropError(f"expression {text!r}: names starting with _ are not allowed")
    if isinstance(node, ast.Name):
        if node.id in expression_functions() and node.id not in names:
            raise SymPropError(f"expression {text!r}: {node.id} is a function; call it, as {node.id}(z)")
        if node.id in names or node.id in CONSTANTS or undefined:
            return
        raise SymPropError(f"expression {text!r}: unknown name {node.id!r}; "
                           f"the variables here are {', '.join(names) or 'none'}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise SymPropError(f"expression {text!r}: only plain calls like exp(z) are allowed")
        name = node.func.id
        if name in NOT_DIFFERENTIABLE:
            raise SymPropError(f"expression {text!r}: {name} is not differentiable, so it cannot be used here")
        allowed = expression_functions()
        if name not in allowed and not (undefined and name not in names and name not in CONSTANTS):
            raise SymPropError(f"expression {text!r}: function {name!r} is not allowed; "
                               f"allowed: {', '.join(sorted(allowed, key=str.lower))}")
        for arg in node.args:
            _check(arg, text, names, undefined, depth + 1)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
        _check(node.left, text, names, undefined, depth + 1)
        _check(node.right, text, names, undefined, depth + 1)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, _OPERATORS):
        _check(node.operand, text, names, undefined, depth + 1)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise SymPropError(f"expression {text!r}: use ** for powers, not ^")
    raise SymPropError(f"expression {text!r}: {type(node).__name__} is not allowed; "
                       "use numbers, variables, + - * / ** and allowed functions")


class _Builder:
    """The SymPy expression of a tree that `_check` accepted, checking sizes before SymPy computes."""

    def __init__(self, text: str, source: str, names: dict):
        self.text, self.source, self.names = text, source, names

    def build(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int):
                return self.number(sp.Integer(node.value))
            # As written, exactly: 0.1 is 1/10, not the binary float nearest to it. A literal past
            # float64 (1e999999999, or 1e-999999999) is refused before SymPy writes out its digits.
            literal = ast.get_source_segment(self.source, node) or repr(node.value)
            if node.value == 0 and not any(c in "123456789" for c in literal.lower().partition("e")[0]):
                return sp.Integer(0)
            if not 0 < abs(node.value) < math.inf:
                raise SymPropError(f"expression {self.text!r}: {literal} is out of range; {_RANGE}")
            return self.number(sp.Rational(literal.replace("_", "")))
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            return CONSTANTS[node.id] if node.id in CONSTANTS else sp.Symbol(node.id)
        if isinstance(node, ast.Call):
            name = node.func.id
            function = expression_functions().get(name) or sp.Function(name)
            args = [self.build(arg) for arg in node.args]
            if function in (sp.Max, sp.Min):  # SymPy compares every pair: 30 arguments take seconds
                count = sum(len(a.args) if isinstance(a, function) else 1 for a in args)  # Max(a, Max(b, c))
                if count > MAX_ARGUMENTS:
                    raise SymPropError(f"expression {self.text!r}: {name} of {count} arguments; "
                                       f"the limit is {MAX_ARGUMENTS}")
            return function(*args)
        if isinstance(node, ast.UnaryOp):
            return self.number(_APPLY[type(node.op)](self.build(node.operand)))
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow):
            self.exponent(right, left)
        return self.number(_APPLY[type(node.op)](left, right))

    def exponent(self, value, base=None) -> None:
        # Also the number added in an exponent: expanding 2**(10**10 + z) computes 2**(10**10) * 2**z.
        number = value.as_coeff_Add()[0] if isinstance(value, sp.Expr) else value
        if isinstance(number, sp.Rational) and abs(number) > MAX_EXPONENT:
            raise SymPropError(f"expression {self.text!r}: the exponent {_short(number)} is too large; "
                               f"a number used as an exponent must be at most {MAX_EXPONENT} in size")
        # and with the base: (1e100)**(z - 100) splits off (1e100)**(-100), an exact 1e-10000
        if isinstance(number, sp.Rational) and number != 0 and isinstance(base, (sp.Rational, sp.Float)) \
                and base != 0 and abs(float(number) * math.log10(abs(float(base)))) > 300:
            raise SymPropError(f"expression {self.text!r}: {_short(base)} to the power {_short(number)} "
                               f"is out of range; {_RANGE}")

    def number(self, value):
        if isinstance(value, sp.Rational) and max(value.p.bit_length(), value.q.bit_length()) > MAX_NUMBER_BITS:
            raise SymPropError(f"expression {self.text!r}: {_short(value)} is out of range; {_RANGE}")
        return value


def _check_result(expr: sp.Expr, text: str, variables: tuple[str, ...]) -> None:
    """What SymPy made of it: finite, real, with small exponents, and not too big multiplied out."""
    if expr.has(*_NOT_FINITE):
        raise SymPropError(f"expression {text!r} is infinite or undefined (a division by zero, or log(0)?)")
    builder = _Builder(text, text, {})
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow):  # SymPy merges z*z*z into z**3, and (z**50)**50 into z**2500
            builder.exponent(node.exp, node.base)
        elif isinstance(node, sp.Rational):
            builder.number(node)
    constants = []
    _constant_parts(expr, constants)
    for constant in constants:  # the generated code computes them in float64
        value = _float(constant)
        if value is not None and not math.isfinite(value):
            what = "is not real (sqrt or log of a negative number?)" if math.isnan(value) else \
                "is past the float64 range of about 1e308"
            raise SymPropError(f"expression {text!r}: the constant {_cut(constant)} {what}")
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow) and node.base.is_number and not node.exp.is_number:
            value = _float(node.base)
            if value is not None and not value > 0 or not _exactly_positive(node.base):
                raise SymPropError(f"expression {text!r}: in {_cut(node)}, the base of a power with a "
                                   "variable exponent must be positive (else it is not real)")
    nesting = _kink_nesting(expr)
    if nesting > MAX_ARGUMENTS:  # each level of Max(a, Min(b, ...)) doubles the branches of the derivative
        raise SymPropError(f"expression {text!r}: Max and Min are nested {nesting} deep; the limit is {MAX_ARGUMENTS}")
    # Derivation multiplies out the derivative (symprop.simplify.reduce_sum), so that is measured too.
    for what, form in [("", expr)] + [(f"d/d{v} of ", sp.diff(expr, sp.Symbol(v))) for v in variables]:
        _, size, _, degree = _expanded_size(form)
        if not size <= MAX_EXPANDED_SIZE:
            raise SymPropError(f"expression {text!r} is too big: {what}it multiplies out to about {_short(size)} "
                               f"symbols, past the limit of {MAX_EXPANDED_SIZE}; write it more simply")
        if not degree <= MAX_EXPONENT:
            raise SymPropError(f"expression {text!r} is too big: {what}it multiplies out to powers up to "
                               f"{_short(degree)}, past the limit of {MAX_EXPONENT}; write it more simply")


def _exactly_positive(constant: sp.Expr) -> bool:
    """Whether a constant is positive as SymPy computes it exactly: cos(99999999999999999999) is negative, though
    float64 (which rounds the argument) makes it positive. Unknown counts as not positive."""
    try:
        value = constant.evalf(30, maxn=200)
    except Exception:  # noqa: BLE001 - SymPy's evaluation can fail in many ways; none of them says positive
        return False
    return bool(value.is_extended_real and value.is_positive)


def _kink_nesting(expr: sp.Expr) -> int:
    inner = max((_kink_nesting(a) for a in expr.args), default=0)
    return inner + 1 if isinstance(expr, (sp.Max, sp.Min)) else inner


def _constant_parts(expr: sp.Expr, out: list) -> None:
    """The largest parts of `expr` that hold no symbol (and no undefined function)."""
    if not expr.free_symbols and not expr.atoms(sp.core.function.AppliedUndef):
        if not expr.is_Number:
            out.append(expr)
        return
    for arg in expr.args:
        _constant_parts(arg, out)


_SYMPY_FUNCTIONS = {sp.cot: lambda u: 1 / math.tan(u)}  # what SymPy itself may make of an allowed function

def _float(expr: sp.Expr) -> float | None:
    """A constant's value in float64: inf past its range, nan where it is not real; None if unknown.

    Computed with Python floats, not with SymPy: evalf of exp(exp(exp(100))) would not end."""
    try:
        if isinstance(expr, sp.Rational):
            return expr.p / expr.q
        if expr in (sp.pi, sp.E):
            return float(expr)
        if expr == sp.I:
            return math.nan
        args = [_float(a) for a in expr.args]
        if None in args:
            return None
        if expr.is_Add:
            return math.fsum(args)
        if expr.is_Mul:
            return math.prod(args)
        if expr.is_Pow:
            if args[0] < 0 and expr.exp.is_integer is not True:  # (-1)**(1 - 1e-300) is not -1.0
                return math.nan
            value = args[0] ** args[1]
            return math.nan if isinstance(value, complex) else float(value)
        op = by_function(expr.func)
        function = op.python if op is not None else _SYMPY_FUNCTIONS.get(expr.func)
        return None if function is None else float(function(*args))
    except (OverflowError, ZeroDivisionError):
        return math.inf
    except ValueError:  # a math domain error: log(-1), or inf - inf in fsum
        return math.nan


def _expanded_size(expr: sp.Expr) -> tuple[float, float, float, float]:
    """(terms, symbols, degree, highest degree): an estimate of `sympy.expand(expr)`, without running it.

    Expanding multiplies out sums, powers of sums and products of sums; it also expands inside
    every function argument, which then counts once per term that holds it. The degree is that
    of the polynomial it makes, ((z**100 - 1)/2)**10 has z**1000 in it, and the highest degree
    is the largest one anywhere, function arguments included.
    """
    if expr.is_Add:
        parts = [_expanded_size(a) for a in expr.args]
        return (sum(p[0] for p in parts), sum(p[1] for p in parts), max(p[2] for p in parts),
                max(p[3] for p in parts))
    if expr.is_Mul:
        parts = [_expanded_size(a) for a in expr.args]
        terms, degree = math.prod(p[0] for p in parts), sum(p[2] for p in parts)
        if not terms < math.inf:  # inf * (inf / inf) would be nan, which compares as small
            return math.inf, math.inf, degree, max([degree] + [p[3] for p in parts])
        return terms, terms * sum(p[1] / p[0] for p in parts), degree, max([degree] + [p[3] for p in parts])
    if expr.is_Pow and isinstance(expr.exp, sp.Rational) and abs(expr.exp) >= 2:
        (base_terms, base_size, degree, highest), power = _expanded_size(expr.base), int(abs(expr.exp))
        if not base_terms <= 10**6:
            return math.inf, math.inf, math.inf, math.inf
        terms = float(math.comb(power + int(base_terms) - 1, int(base_terms) - 1))
        return terms, terms * power * base_size / base_terms, power * degree, max(power * degree, highest)
    degree = 0.0 if expr.is_number else 1.0  # a constant, or a symbol or function: one factor of a term
    if not expr.args:
        return 1.0, 1.0, degree, degree
    inner = [_expanded_size(a) for a in expr.args]  # a function, or sqrt(u), u**v
    return 1.0, 1.0 + sum(p[1] for p in inner), degree, max([degree] + [p[3] for p in inner])


def _short(value) -> str:
    """A number for an error message, without writing out all the digits of a huge one."""
    if isinstance(value, float):
        return f"{value:.0f}" if value < 1e9 else f"{value:.3g}" if value < math.inf else "uncountably many"
    if max(value.p.bit_length(), value.q.bit_length()) > 100:  # str() past 4300 digits raises ValueError
        magnitude = round((value.p.bit_length() - value.q.bit_length()) * math.log10(2))
        return f"about {'-' if value < 0 else ''}1e{magnitude:+d}"
    return str(value)


def _cut(expr: sp.Expr) -> str:
    text = str(expr)
    return text if len(text) <= 60 else text[:50] + "..."


def _reason(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
