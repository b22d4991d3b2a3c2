"""User expressions, parsed against an allow-list and never run as Python.

The text is first read by `ast.parse`, which only builds a syntax tree. Every node
is checked: numbers, the allowed variables, calls of allowed functions, and
arithmetic. Only then does SymPy's parser see it, with a namespace holding
nothing but the allowed names.
"""

from __future__ import annotations

import ast

import sympy as sp
from sympy.parsing.sympy_parser import auto_number, parse_expr, rationalize

from ..errors import SymPropError
from ..functions import sigmoid, softplus

MAX_LENGTH = 2000  # characters; a longer expression is refused before any parsing
MAX_DEPTH = 40  # nesting of the syntax tree

FUNCTIONS: dict[str, object] = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "Abs": sp.Abs, "abs": sp.Abs,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "atan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh,
    "erf": sp.erf, "sigmoid": sigmoid, "softplus": softplus,
    "Max": sp.Max, "Min": sp.Min, "max": sp.Max, "min": sp.Min,
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
NOT_DIFFERENTIABLE = {"floor", "ceiling", "ceil", "round", "sign", "Mod", "frac", "Heaviside"}

_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


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
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as error:
        raise SymPropError(f"expression {text!r} does not parse: {_reason(error)}") from None
    except (RecursionError, MemoryError):
        raise SymPropError(f"expression is nested deeper than {MAX_DEPTH} levels") from None

    names = {v: sp.Symbol(v) for v in variables}
    _check(tree.body, text, names, undefined_functions, depth=0)

    namespace: dict[str, object] = {**FUNCTIONS, **CONSTANTS, **names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in namespace:
            called = any(isinstance(p, ast.Call) and p.func is node for p in ast.walk(tree))
            namespace[node.id] = sp.Function(node.id) if called else sp.Symbol(node.id)
    global_dict = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational}
    try:
        expr = parse_expr(text.strip(), local_dict=namespace, global_dict=global_dict,
                          transformations=(auto_number, rationalize), evaluate=True)
    except Exception as error:  # SymPy's own evaluation errors, e.g. a function given two arguments
        raise SymPropError(f"expression {text!r} is not valid: {_reason(error)}") from None
    if not isinstance(expr, sp.Expr):
        raise SymPropError(f"expression {text!r} is not a number-valued expression")
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
        if node.id in names or node.id in CONSTANTS or undefined:
            return
        if node.id in FUNCTIONS:
            raise SymPropError(f"expression {text!r}: {node.id} is a function; call it, as {node.id}(z)")
        raise SymPropError(f"expression {text!r}: unknown name {node.id!r}; "
                           f"the variables here are {', '.join(names) or 'none'}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise SymPropError(f"expression {text!r}: only plain calls like exp(z) are allowed")
        name = node.func.id
        if name in NOT_DIFFERENTIABLE:
            raise SymPropError(f"expression {text!r}: {name} is not differentiable, so it cannot be used here")
        if name not in FUNCTIONS and not (undefined and name not in names):
            raise SymPropError(f"expression {text!r}: function {name!r} is not allowed; "
                               f"allowed: {', '.join(sorted(FUNCTIONS, key=str.lower))}")
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


def _reason(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
