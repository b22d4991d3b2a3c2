"""Fuzzing what a user can feed symprop: spec files, and the expressions inside them.

Two properties, each checked on random input by Hypothesis and on hand-picked cases:

- `symprop derive SPEC --out DIR`, run in-process, on arbitrary bytes, on arbitrary text, and on
  structurally plausible specs whose values are mutated (wrong types, huge integers, unknown keys,
  random strings as expressions), exits 0, or exits 2 with exactly one line on stderr that starts
  "symprop: error: ". Never exit 1, never a traceback, never an uncaught exception.
- `parse(text, ("z",))` and `parse(text, (), undefined_functions=True)`, on arbitrary strings,
  return a SymPy expression or raise SymPropError; nothing in the text is ever run (marker files
  that code in an expression would create are never created).

Every call must be quick: each one is timed, and must finish within CALL_LIMIT seconds. The
explicit tests below pin the cases that once hung or crashed (10**10**10, (z+1)**1000, a 1 MB
expression, Max of 60 arguments, 1e999999999, an integer of 5000 digits in TOML, ...): they must
be refused within a second, with a one-line error.

The normal run uses a fast, deterministic profile (derandomize=True, no example database). For a
long, random run, set SYMPROP_FUZZ_EXAMPLES to the number of examples per property, as for
tests/test_fuzz_models.py:

    SYMPROP_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz_inputs.py -p no:cacheprovider
"""

from __future__ import annotations

import math
import os
import string
import time
import traceback
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from symprop import SymPropError
from symprop.cli import main
from symprop.declare.parse import FUNCTIONS, MAX_EXPONENT, parse
from symprop.ops.registry import losses, toml_layers

CALL_LIMIT = 10.0  # seconds, for any one call; most take milliseconds
QUICK = 1.0  # seconds, for the explicit "refused quickly" cases

_LONG = os.environ.get("SYMPROP_FUZZ_EXAMPLES", "").strip()


def profile(examples: int):
    """The fast, deterministic profile with `examples` examples, or the long random one."""
    if _LONG:
        return settings(max_examples=int(_LONG), deadline=None, derandomize=False, print_blob=True,
                        suppress_health_check=list(HealthCheck))
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck))


# -- running the CLI ---------------------------------------------------------------------------
class Workspace:
    """One spec file and one output folder, reused by every example of a test."""

    def __init__(self, root: Path):
        self.root = root
        self.spec = root / "spec.toml"
        self.out = root / "out"

    def derive(self, content: bytes | str) -> tuple[int, str]:
        """Write the spec, run `symprop derive`, check the exit contract; returns (code, stderr)."""
        self.spec.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        for leftover in self.out.iterdir() if self.out.is_dir() else ():
            leftover.unlink()
        start = time.perf_counter()
        result = CliRunner().invoke(main, ["derive", str(self.spec), "--out", str(self.out)])
        elapsed = time.perf_counter() - start
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            details = "".join(traceback.format_exception(*result.exc_info))
            pytest.fail(f"uncaught {type(result.exception).__name__} on spec {content!r}:\n{details}")
        err = result.stderr
        assert result.exit_code in (0, 2), (result.exit_code, content, err)
        assert "Traceback" not in err, err
        if result.exit_code == 2:
            assert err.startswith("symprop: error: "), err
            assert err.endswith("\n") and err.count("\n") == 1 and len(err.splitlines()) == 1, err
        else:
            assert not [p.name for p in self.out.iterdir() if p.name.startswith(".")], "temporary files left"
        assert elapsed < CALL_LIMIT, f"{elapsed:.1f} s for spec {content!r}"
        return result.exit_code, err


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("fuzz_inputs"))


# -- a small TOML writer, for specs with values of any type ----------------------------------
def toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if value == math.inf else "-inf" if value == -math.inf \
            else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(data: dict) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in data.items())


# -- strategies ----------------------------------------------------------------------------------
SCALARS = st.one_of(
    st.integers(-3, 5), st.integers(), st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 10**100, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12), st.sampled_from(["", "linear", "mse", "z", "mean", "index", "probs", "\n", "a\nb"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)

# Expressions: ones that derive, ones that must be refused, and random token soup.
GOOD_ACTIVATIONS = ["z*sigmoid(z)", "tanh(z)", "log(1 + exp(z))", "z**2/2", "Max(z, 0)", "softplus(z) - 1",
                    "erf(z)", "sqrt(z**2 + 1)", "atan(z)", "0.5*z", "exp(-z**2)"]
GOOD_LOSSES = ["(y - t)**2", "log(cosh(y - t))", "Abs(y - t)", "softplus(-y*t)", "(y - t)**4 + y"]
HOSTILE = ["__import__('os').system('echo pwned')", "().__class__", "z.real", "lambda: z", "[z]", "z[0]",
           "f'{z}'", "(q := z)", "10**10**10", "(z+1)**100000", "z**(10**10)", "9" * 1500, "1e999999999",
           "exp(exp(exp(exp(z))))", "Max(" + ",".join(f"{k}*z" for k in range(60)) + ")", "z/0", "sqrt(-1)*z",
           "(" * 300 + "z" + ")" * 300, "exp(" * 50 + "z" + ")" * 50, "z" * 3000, "gamma(z)", "floor(z)",
           "z ^ 2", "y", "t", "1", "", "  ", "z\x00", "\ufeffz", "exec('1')", "eval", "sigmoid", "Integer(2)"]
TOKENS = ["z", "y", "t", "x", "a", "exp", "log", "sigmoid", "Max", "Min", "pi", "E", "I", "oo", "__class__",
          "__import__", "lambda", "for", "if", "else", "not", "and", "Integer", "Symbol", "eval", "os",
          "0", "1", "2", "10", "0.5", "1e308", "1e-400", "99999999999999999999", "0x1f", "1j",
          "+", "-", "*", "/", "**", "//", "%", "@", "^", "&", "|", "~", "<", "==", ":=", ".", ",", ":",
          "(", ")", "(", ")", "[", "]", "{", "}", "'", '"', "f'", "#", "\\", " ", "\n", "\t"]
TOKEN_SOUP = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
EXPRESSIONS = st.one_of(st.sampled_from(GOOD_ACTIVATIONS + GOOD_LOSSES + HOSTILE), TOKEN_SOUP,
                        st.text(max_size=40))

LAYER_TYPE_NAMES = st.sampled_from(list(toml_layers()))
LOSS_TYPE_NAMES = st.sampled_from(list(losses()))
RARELY = st.sampled_from([False] * 9 + [True])  # Hypothesis favours boundaries: integers(0, 9) is often 0 or 9


@st.composite
def maybe(draw, strategy, mutated=VALUES):
    """Mostly the plausible value; one time in ten, a random one of any type."""
    return draw(mutated) if draw(RARELY) else draw(strategy)


@st.composite
def layer_tables(draw):
    kind = draw(maybe(LAYER_TYPE_NAMES))
    table = {"type": kind}
    if kind == "linear" or draw(RARELY):
        table["outputs"] = draw(maybe(st.integers(1, 4)))
        if draw(st.booleans()):
            table["bias"] = draw(maybe(st.booleans()))
    if kind == "elementwise" or draw(RARELY):
        table["expr"] = draw(maybe(EXPRESSIONS))
    return table


@st.composite
def loss_tables(draw):
    kind = draw(maybe(LOSS_TYPE_NAMES))
    table = {"type": kind}
    if draw(st.booleans()):
        table["reduction"] = draw(maybe(st.sampled_from(["mean", "sum", "batchmean", "max"])))
    if kind in ("cross_entropy", "nll") or draw(RARELY):
        table["target"] = draw(maybe(st.sampled_from(["index", "probs", "same"])))
    if kind == "elementwise" or draw(RARELY):
        table["expr"] = draw(maybe(EXPRESSIONS))
    return table


@st.composite
def specs(draw):
    """A spec as TOML text: plausible structure, some values mutated, keys dropped or added."""
    data = {
        "name": draw(maybe(st.sampled_from(["fuzz", "m", "not an identifier", "class", "_x", "é"]))),
        "inputs": draw(maybe(st.integers(1, 4))),
        "layers": draw(maybe(st.lists(layer_tables(), min_size=1, max_size=4))),
        "loss": draw(maybe(loss_tables())),
    }
    if draw(RARELY):
        del data[draw(st.sampled_from(list(data)))]
    if draw(RARELY):
        data[draw(st.text(max_size=8))] = draw(VALUES)
    return toml_document(data)


# -- the spec loader, through the CLI ------------------------------------------------------------
@profile(60)
@given(content=st.binary(max_size=400))
@example(content=b"\xff\xfe")
@example(content=b"name = \"a\"\x00")
@example(content=b"")
def test_derive_on_arbitrary_bytes(workspace, content):
    workspace.derive(content)


@profile(60)
@given(content=st.text(max_size=400))
@example(content="[[layers]]\n" * 3)
@example(content="name = 1\n" * 2)
@example(content="a = [" * 1000)
def test_derive_on_arbitrary_text(workspace, content):
    workspace.derive(content)


@profile(120)
@given(content=specs())
def test_derive_on_mutated_specs(workspace, content):
    workspace.derive(content)


GOOD_SPEC = """
name = "fuzz"
inputs = 3
layers = [{type = "linear", outputs = 2}, {type = "elementwise", expr = EXPR}, {type = "linear", outputs = 1}]
loss = {type = "mse"}
"""


@profile(25)
@given(expr=st.one_of(EXPRESSIONS, st.deferred(lambda: arithmetic(3)).map(
    lambda text: text.replace("y", "z").replace("t", "z"))))
def test_derive_with_random_activations(workspace, expr):
    workspace.derive(GOOD_SPEC.replace("EXPR", toml_string(expr)))


# Each of these once crashed `symprop derive` (a traceback, exit 1), hung it, or was accepted where it
# makes no sense (a width of 1e20); they must now be refused in one line, quickly.
SPEC_REGRESSIONS = {
    "5000-digit integer": ("inputs = " + "9" * 5000 + "\n", "malformed TOML: Exceeds the limit"),
    "huge width": (GOOD_SPEC.replace("inputs = 3", "inputs = 100000000000000000000")
                   .replace("EXPR", '"tanh(z)"'), "inputs: must be at most 2147483647"),
    "newline in a key": ('"a\\nb" = 1\n', "unknown key"),
    "long array value": ("name = [" + ", ".join(["1"] * 3000) + "]\n", "name: must be a string, got [1, 1"),
    "10**10**10": (GOOD_SPEC.replace("EXPR", '"10**10**10"'), "the exponent 10000000000 is too large"),
    "(z+1)**1000": (GOOD_SPEC.replace("EXPR", '"(z+1)**1000"'), "the exponent 1000 is too large"),
    "division by zero": (GOOD_SPEC.replace("EXPR", '"z/0"'), "is infinite or undefined"),
    "log(0)": (GOOD_SPEC.replace("EXPR", '"log(0) + z"'), "is infinite or undefined"),
    "not real": (GOOD_SPEC.replace("EXPR", '"sqrt(-1)*z"'), "is not real"),
    "nested sigmoids": (GOOD_SPEC.replace("EXPR", '"' + "sigmoid(" * 30 + "z" + ")" * 30 + '"'), "is too big"),
    "Max of 60": (GOOD_SPEC.replace("EXPR", '"Max(' + ",".join(f"{k}*z" for k in range(60)) + ')"'),
                  "Max of 60 arguments; the limit is 8"),
    "1e999999999": (GOOD_SPEC.replace("EXPR", '"1e999999999*z"'), "1e999999999 is out of range"),
    "a SyntaxWarning": (GOOD_SPEC.replace("EXPR", '"1if z else 2"'), "IfExp is not allowed"),  # 2 lines
    # Found by the fuzzers:
    "huge number added in an exponent": (GOOD_SPEC.replace("EXPR", '"100 - (1e-300)**(1e300 + z)"'),
                                         "the exponent about 1e+300 is too large"),  # hung in tidy's expand
    "degree 1000 once multiplied out": (GOOD_SPEC.replace("EXPR", '"((z**100 - (1e300 + 1))/E)**10"'),
                                        "is too big"),  # hung in reduce_sum's expand
    "a constant past float64": (GOOD_SPEC.replace("EXPR", '"sinh(sinh(99999999999999999999))*z"'),
                                "past the float64 range"),  # OverflowError in fold_numbers
    "a negative base": (GOOD_SPEC.replace("EXPR", '"cos(98)**z"'),
                        "must be positive"),  # TypeError: cannot create mpf from 3.14...*I
    "a complex constant": (GOOD_SPEC.replace("EXPR", '"100**((-2*pi)**(-E))*z"'), "is not real"),  # TypeError
    "(z+100)**100": (GOOD_SPEC.replace("EXPR", '"(z + 100)**100"'), "is too big"),  # took 9 s
    "loss (y*t+y+t)**40": (GOOD_SPEC.replace('{type = "mse"}', '{type = "elementwise", expr = "(y*t + y + t)**40"}')
                           .replace("EXPR", '"z"'), "is too big"),
}


@pytest.mark.parametrize("case", SPEC_REGRESSIONS, ids=list(SPEC_REGRESSIONS))
def test_spec_regressions(workspace, case):
    text, message = SPEC_REGRESSIONS[case]
    start = time.perf_counter()
    code, err = workspace.derive(text)
    assert time.perf_counter() - start < QUICK + 1  # the CLI itself adds a little
    assert code == 2 and message in err, err


# -- the expression parser -----------------------------------------------------------------------
def parse_both(text: str):
    """Both modes of `parse`: each returns an expression or raises SymPropError, quickly."""
    results = []
    for variables, undefined in ((("z",), False), ((), True)):
        start = time.perf_counter()
        try:
            expr = parse(text, variables, undefined_functions=undefined)
        except SymPropError as error:
            message = str(error)
            assert message and "\n" not in message, message
            results.append(error)
        else:
            assert isinstance(expr, sp.Expr), (text, expr)
            results.append(expr)
        elapsed = time.perf_counter() - start
        assert elapsed < CALL_LIMIT, f"{elapsed:.1f} s for {text!r}"
    return results


def marker_payloads(marker: Path) -> list[str]:
    """Expressions that, if anything in them ran, would create `marker`."""
    touch = f"__import__('os').system('touch {marker}')"
    opened = f"open('{marker}', 'w')"
    return [
        touch, opened, f"z + {touch}", f"exp({touch})", f"({touch})*z", f"lambda: {touch}",
        f"(lambda: {touch})()", "z.__class__.__base__.__subclasses__()", f"z[{touch}]",
        f"f'{{{touch}}}'", f"(q := {touch})", f"[{touch} for q in [1]]", f"{{{touch}: 1}}",
        f"__builtins__.open('{marker}', 'w')", "().__class__.__bases__[0].__subclasses__()",
        f"exec(\"open('{marker}', 'w')\")", f"eval(\"open('{marker}', 'w')\")", f"a({touch})",
        f"z if {touch} else z", "__import__", "getattr(z, '__class__')", f"Function('{marker}')",
        f"sympify(\"{opened}\")", f"Integer({touch})", f"S('{opened}')", "Symbol('x').__class__",
        f"exp(z){touch}", f"exp(z); {touch}", f"exp(z)\n{touch}", f"# {touch}\nz", f"\\\n{touch}",
        f"z and {touch}", f"not {touch}", f"await {touch}", f"(yield {touch})", f"*{touch}",
    ]


def test_code_in_expressions_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    payloads = marker_payloads(marker)
    for text in payloads:
        parse_both(text)
        assert not marker.exists(), text
    for text in payloads:  # and as a spec's activation or loss, through the CLI
        for spec in (GOOD_SPEC.replace("EXPR", toml_string(text)),
                     GOOD_SPEC.replace('{type = "mse"}', f'{{type = "elementwise", expr = {toml_string(text)}}}')
                     .replace("EXPR", '"z"')):
            Workspace(tmp_path).derive(spec)  # refused, or (a comment, say) harmless
            assert not marker.exists(), text
    code = CliRunner().invoke(main, ["derive", "--expr", payloads[0], "--wrt", "z"]).exit_code
    assert code == 2 and not marker.exists()


@profile(300)
@given(text=st.one_of(st.text(max_size=200), TOKEN_SOUP, st.sampled_from(HOSTILE)))
@example(text="z" + "+z" * 999)
def test_parse_on_arbitrary_strings(text):
    parse_both(text)


@profile(150)
@given(text=st.lists(st.sampled_from(TOKENS + ["(z+1)", "**", "**", "10**", "Max(z,", "exp(", ")"]),
                     max_size=60).map("".join))
def test_parse_on_token_soup(text):
    parse_both(text)


# An expression grammar that is always valid Python, so SymPy is reached on every example.
@st.composite
def arithmetic(draw, depth=4):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(["z", "y", "t", "pi", "E", "0", "1", "2", "0.5", "10", "1e300", "1e-300",
                                     "100", "99999999999999999999"]))
    kind = draw(st.sampled_from(["binary", "binary", "call", "neg", "power"]))
    if kind == "binary":
        a, b = draw(arithmetic(depth - 1)), draw(arithmetic(depth - 1))
        return f"({a}{draw(st.sampled_from('+-*/'))}{b})"
    if kind == "power":
        return f"({draw(arithmetic(depth - 1))})**({draw(arithmetic(depth - 1))})"
    if kind == "neg":
        return f"-{draw(arithmetic(depth - 1))}"
    name = draw(st.sampled_from(sorted(FUNCTIONS) + ["a", "gamma"]))
    args = draw(st.lists(arithmetic(depth - 1), min_size=1, max_size=3 if name in ("Max", "Min", "log") else 1))
    return f"{name}({', '.join(args)})"


@profile(300)
@given(text=arithmetic())
def test_parse_on_random_arithmetic(text):
    parse_both(text.replace("y", "z").replace("t", "z") if text.count("y") % 2 else text)


# -- explicit limits: refused quickly, in one line -----------------------------------------------
REFUSED_QUICKLY = {
    "1 MB sum": ("z+" * 500_000 + "z", "characters long; the limit is 2000"),
    "100000 parentheses": ("(" * 100_000 + "z" + ")" * 100_000, "characters long"),
    "5000 nested exp": ("exp(" * 5000 + "z" + ")" * 5000, "characters long"),
    "300 nested exp": ("exp(" * 300 + "z" + ")" * 300, "too many nested parentheses"),
    "45 nested exp": ("exp(" * 45 + "z" + ")" * 45, "nested deeper than 40 levels"),
    "1000 unary minus": ("-" * 1000 + "z", "nested deeper than 40 levels"),
    "(z+1)**100000": ("(z+1)**100000", "the exponent 100000 is too large"),
    "z**(10**10)": ("z**(10**10)", "the exponent 10000000000 is too large"),
    "10**10**10": ("10**10**10", "the exponent 10000000000 is too large"),
    "3**3**3**3": ("3**3**3**3", "the exponent 7625597484987 is too large"),
    "2**2**2**2**2": ("2**2**2**2**2", "the exponent 65536 is too large"),
    "10**(-10**10)": ("10**(-10**10)", "the exponent -10000000000 is too large"),
    "(z**50)**50": ("(z**50)**50", "the exponent 2500 is too large"),
    "(z**20 + 1)**10": ("(z**20 + 1)**10", "it multiplies out to powers up to 200"),
    "z**-1e308": ("z**-1e308", "the exponent about -1e+308 is too large"),
    "1999 digits": ("9" * 1999, "is out of range"),
    "1e400": ("1e400", "1e400 is out of range"),
    "1e999999999": ("1e999999999", "is out of range"),
    "1e-999999999": ("1e-999999999*z", "is out of range"),
    "1e308*10": ("1e308*10", "about 1e+309 is out of range"),
    "(9**99)**99": ("(" + "9" * 99 + ")**99", "is out of range"),
    "(z+1)**60*(z+2)**60": ("(z+1)**60*(z+2)**60", "it multiplies out to about 446520 symbols"),
    "(z+100)**100": ("(z+100)**100", "it multiplies out to about 10100 symbols"),  # once took 9 s to derive
    "nested sigmoid": ("sigmoid(" * 30 + "z" + ")" * 30, "d/dz of it multiplies out"),  # (z only)
    "product of sums": ("*".join(f"(z+{k})**9" for k in range(1, 8)), "multiplies out"),
    "Max of 60": ("Max(" + ",".join(f"sin({k}*z)" for k in range(60)) + ")", "Max of 60 arguments"),
    "Max and Min nested 9 deep": ("Max(2*z-1,Min(3*z-2,Max(4*z-3,Min(5*z-4,Max(6*z-5,Min(7*z-6,Max(8*z-7,"
                                  "Min(9*z-8,Max(10*z-9,z)))))))))", "Max and Min are nested 9 deep"),
    "a size of inf times nan": ("((" + "+".join(f"{f}(z)" for f in FUNCTIONS if f[0].islower() and f not in (
        "log", "sqrt", "abs", "tan", "max", "min")) + ")**10*(" + "+".join(
        f"{f}(2*z)" for f in FUNCTIONS if f[0].islower() and f not in ("log", "sqrt", "abs", "tan", "max", "min"))
        + ")**10+1)**2*z", "it multiplies out to about uncountably many symbols"),  # was nan, and accepted
    "nested Max": ("Max(z,Max(1,2*z),3*z,4*z,5*z,6*z,7*z,8*z)", "Max of 9 arguments"),
    "z/0": ("z/0", "is infinite or undefined"),
    "0/0": ("0/0 + z", "is infinite or undefined"),
    "Min()": ("Min() + z", "is infinite or undefined"),
    "tan(pi/2)": ("tan(pi/2)*z", "is infinite or undefined"),
    "sqrt(-1)": ("sqrt(-1)*z", "is not real"),
    "(-8)**(1/3)": ("(-8)**(1/3)*z", "is not real"),
    "exp": ("exp*z", "exp is a function; call it"),
}


@pytest.mark.parametrize("case", REFUSED_QUICKLY, ids=list(REFUSED_QUICKLY))
def test_refused_quickly(case):
    text, message = REFUSED_QUICKLY[case]
    modes = [(("z",), False)] + ([] if "d/dz" in message else [((), True)])  # no derivative in scalar mode
    for variables, undefined in modes:
        start = time.perf_counter()
        with pytest.raises(SymPropError) as raised:
            parse(text, variables, undefined_functions=undefined)
        assert time.perf_counter() - start < QUICK, case
        assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)[:300]


ACCEPTED = {  # near the limits, and still fine
    "(z+1)**70": ("(z+1)**70", "(z + 1)**70"),
    "z**100": ("z**100", "z**100"),
    "E**100": ("E**100", "exp(100)"),
    "exp(exp(exp(exp(z))))": ("exp(exp(exp(exp(z))))", "exp(exp(exp(exp(z))))"),
    "1e300*z": ("1e300*z", f"{10**300}*z"),
    "0.1": ("0.1*z", "z/10"),
    "1e-999999999 zero": ("0e999999999 + z", "z"),
    "Max of 8": ("Max(z,2*z,3*z,4*z,5*z,6*z,7*z,8*z)", "Max(z, 2*z, 3*z, 4*z, 5*z, 6*z, 7*z, 8*z)"),
    "log base": ("log(z, 2)", "log(z)/log(2)"),
    "fullwidth z": ("\uff5a + 1", "z + 1"),
}


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_accepted_near_the_limits(case):
    text, expected = ACCEPTED[case]
    start = time.perf_counter()
    assert str(parse(text, ("z",))) == expected
    assert time.perf_counter() - start < QUICK


def test_undefined_mode_names_are_plain_symbols():
    """Names that SymPy's own parser would have resolved (Integer, Symbol, I, oo, S) are just symbols
    here; `Integer` once shadowed the constructor that numbers were parsed with."""
    expr = parse("Integer + 2*Symbol + I + oo + S", (), undefined_functions=True)
    assert {s.name for s in expr.free_symbols} == {"Integer", "Symbol", "I", "oo", "S"}
    assert parse("Integer(2) + 1", (), undefined_functions=True) == sp.Function("Integer")(2) + 1
    assert MAX_EXPONENT == 100


def test_control_characters_in_an_expression_make_one_line_errors(workspace):
    for char in string.whitespace + "\x00\x1b\x7f\u2028\x85":
        code, err = workspace.derive(GOOD_SPEC.replace("EXPR", toml_string(f"z{char}*{char}sigmoid(z)")))
        assert code in (0, 2), err


# -- bugs the fuzzers found outside the input layer, fixed: regressions ------------------------------
FIXED_SPECS = {
    # labels defined through each other: h1 = z0 + 1 turned z0 into h1 - 1 (endless recursion)
    "z + 1": GOOD_SPEC.replace("EXPR", '"z + 1"'),
    "100 - z": GOOD_SPEC.replace("EXPR", '"100 - z"'),
    # a power of sigmoid in the LaTeX target (the derivative of sigmoid(-z) = 1 - sigmoid(z))
    "sigmoid power in LaTeX": GOOD_SPEC.replace("EXPR", '"sigmoid(-z)"'),
    # softplus of a constant could not be evaluated to a float
    "constant softplus": GOOD_SPEC.replace("EXPR", '"z + softplus(2)"'),
    "width-1 softmax": 'name = "m"\ninputs = 1\nlayers = [{type = "softmax"}]\nloss = {type = "bce_with_logits"}\n',
    # consecutive sigmoid layers once took exponential time in reduce_sum's expand (14: 25 s)
    # found by the long profile: (1e100)**(|z| - 100) split off an exact 1e-10000 that could not be printed
    "huge constant power": GOOD_SPEC.replace("EXPR", '"(1E100)**((Abs(z)-100))"'),
    "stacked sigmoids": 'name = "stacked"\ninputs = 2\nlayers = [' + ", ".join(
        ['{type = "linear", outputs = 2}'] + ['{type = "sigmoid"}'] * 14) + ']\nloss = {type = "mse"}\n',
}


@pytest.mark.parametrize("case", FIXED_SPECS, ids=list(FIXED_SPECS))
def test_fixed_derivation_bugs(workspace, case):
    code, err = workspace.derive(FIXED_SPECS[case])
    assert code == (2 if case in ("huge constant power", "width-1 softmax") else 0), err  # the softmax: no parameters

