"""Simplification: tidy fused expressions, rewrite them into stable forms, factor reductions.

Rules, none of them a derivative:
- `tidy` picks the shortest of a few equivalent forms (as written, expanded, factored),
  which is how σ(z) − t falls out of σ with binary cross-entropy;
- stable rewrites of log f(u), each registered by the op of f (log σ(u) = −log(1 + e^(−u)), in σ's module);
- `replace_structurally` names a definition wherever it stands (b2 + mm2 - t -> z2 - t).

Pure SymPy: the sums that build graph tensors (`graph.reduce`) use these rules.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import sympy as sp

from .errors import SymPropError

EXPAND_TERMS = 64  # expanding is tried only while it makes at most this many terms: (a+b)**30 would not end
EXPRESSION_BUDGET = 4000  # operations in one fused expression; past it a derivation stops
# Piecewise are folded into one while it has at most this many pieces (each pair of conditions); the printers
# write one of more than printing/statements.py's MOST_MASKS pieces as a select
FOLD_PIECES = 128


class TooLarge(SymPropError):
    """A derivation past its size budget: it would take minutes, or never end."""


def tidy(expr: sp.Expr, fired: set | None = None) -> sp.Expr:
    """The shortest of a few equivalent forms, in stable form; `fired` collects the notes of the stable rules used."""
    ops = sp.count_ops(expr)
    if ops > EXPRESSION_BUDGET:
        raise TooLarge(f"a derived expression has {ops} operations, past the budget of {EXPRESSION_BUDGET}; "
                       "write the custom expression more simply, or split it over several layers")
    expr = kinks(stable(expr, fired))
    if expr.has(sp.Piecewise) and math.prod(len(p.args) for p in expr.atoms(sp.Piecewise)) <= FOLD_PIECES:
        # one Piecewise on the outside, each branch tidied on its own
        folded = sp.piecewise_fold(expr)
        if isinstance(folded, sp.Piecewise):
            return sp.Piecewise(*((tidy(value, fired), condition) for value, condition in folded.args))
    candidates = [expr]
    if terms_when_expanded(expr) <= EXPAND_TERMS:
        expanded = sp.expand(expr, power_exp=False, power_base=False, log=False)
        candidates += [expanded, sp.factor_terms(expanded)]
    ops = [sp.count_ops(c) for c in candidates]
    fewest = [c for c, n in zip(candidates, ops, strict=True) if n == min(ops)]
    return fewest[0] if len(fewest) == 1 else min(fewest, key=lambda e: len(str(e)))


def terms_when_expanded(expr: sp.Expr) -> float:
    """An upper bound on the number of terms `expand` makes (without running it)."""
    if expr.is_Add:
        return sum(terms_when_expanded(a) for a in expr.args)
    if expr.is_Mul:
        product = 1.0
        for factor in expr.args:
            product *= terms_when_expanded(factor)
        return product
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 1:
        base = terms_when_expanded(expr.base)
        return float(math.comb(int(expr.exp) + int(min(base, 1e6)) - 1, int(min(base, 1e6)) - 1)) \
            if base > 1 and expr.exp < 10_000 else (1.0 if base <= 1 else math.inf)
    return 1.0


# Stable forms of log f(u), each registered by the op of f: (rule, note). A rule takes the argument of a log and returns
# the stable form of the log, or None; the note (a kind of `symprop.notes`) says so to the reader.
STABLE_LOGS: list[tuple[Callable, str]] = []


def stable_log(note: str = ""):
    """Register a rule for the stable form of a log (a decorator)."""
    def register(rule):
        STABLE_LOGS.append((rule, note))
        return rule

    return register


def stable(expr: sp.Expr, fired: set | None = None) -> sp.Expr:
    """Every log in its stable form, where a registered rule knows one: log σ(u) = −log(1 + e^(−u)), with
    log(1 + e^u) a function of its own, finite for every u. (Its derivative is σ, which is printed stably; e^u/(1 +
    e^u) would be inf/inf past
    u ≈ 709.)"""

    def rewrite(log_of):
        for rule, note in STABLE_LOGS:
            found = rule(log_of.args[0])
            if found is not None:
                if fired is not None and note:
                    fired.add(note)
                return found
        return log_of

    return expr.replace(lambda e: isinstance(e, sp.log), rewrite) if STABLE_LOGS else expr


def kinks(expr: sp.Expr, sides: set | None = None) -> sp.Expr:
    """Where a derivative jumps, take torch's value for the function it has the shape of (SymPy's H(0) is ½).

    A step H(u) alone is 0 at u = 0: max(z, 0)'s derivative at 0 is 0, as torch's, and min(max(z, −1), 1)'s at its
    bounds. A pair H(u)·a + H(−u)·b, the two sides of Max(p, q), takes the side where u < 0: max(z, z/10)'s
    negative slope at 0, as torch
    has it, and otherwise one side's derivative, which lies in the subdifferential. |u|' = sign(u) is 0 at 0."""
    steps = [e for e in expr.atoms(sp.Heaviside) if e.args[1] == sp.S.Half]
    if not steps:
        return expr
    arguments = {e.args[0] for e in steps}

    def two_sided(u: sp.Expr) -> bool:  # `sides`: the differences p − q of the Max(p, q) the steps may come from
        return sides is None or any(sp.expand(u - s) == 0 or sp.expand(u + s) == 0 for s in sides)

    def at_zero(u: sp.Expr) -> int:
        return 1 if -u in arguments and u.could_extract_minus_sign() and two_sided(u) else 0

    return expr.xreplace({e: sp.Heaviside(e.args[0], at_zero(e.args[0])) for e in steps})


def derivative(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """d expr/d symbol, its kinks taken as torch takes them: a step pair H(u), H(−u) is the two sides of one Max(p,
    q) only where expr has such a Max, p − q = ±u; the steps of two ReLUs (the pinball loss's Max(y − t, 0)/4 +
    3·Max(t − y, 0)/4) are each 0 at their tie, whatever SymPy's order of their arguments."""
    sides = {sp.expand(m.args[0] - m.args[1]) for m in expr.atoms(sp.Max, sp.Min)
             if len(m.args) == 2 and not any(a.is_number for a in m.args)}
    derived = sp.diff(expr, symbol)
    if derived.has(sp.DiracDelta):  # a step's derivative (a second derivative at a kink) is 0, as torch's is
        derived = derived.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    return kinks(derived, sides)


def replace_structurally(expr: sp.Expr, definition: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """`definition` → `symbol` wherever it stands, also as part of a sum or product: b2 + mm2 - t → z2 - t.

    Structural, not algebraic (SymPy's subs once turned exp(x) into sqrt(h) for h = exp(x/2)).
    """
    if expr.is_Atom:
        return symbol if expr == definition else expr
    if expr == definition:
        return symbol
    if expr.is_Pow and definition.is_Pow and expr.base == definition.base and definition.exp.is_Rational:
        ratio = expr.exp / definition.exp  # r = v^(-1/2) names v^(-3/2) too: it is r^3
        if ratio.is_Integer and 1 < ratio <= 4:
            return symbol ** ratio
    rebuilt = expr.func(*(replace_structurally(a, definition, symbol) for a in expr.args)) if expr.args else expr
    if (definition.is_Add or definition.is_Mul) and rebuilt.func is definition.func:
        for sign in ((1, -1) if definition.is_Add else (1,)):
            wanted = Counter(sp.Add.make_args(-definition) if sign == -1 else definition.args)
            have = Counter(rebuilt.args)
            if all(have[a] >= n for a, n in wanted.items()):
                return rebuilt.func(sign * symbol, *(have - wanted).elements())
    return rebuilt


def positive_part_of(expr: sp.Expr):
    """z, when expr is max(0, z), the positive part of z; None otherwise."""
    if isinstance(expr, sp.Max) and len(expr.args) == 2 and 0 in expr.args:
        return expr.args[1] if expr.args[0] == 0 else expr.args[0]
    return None
