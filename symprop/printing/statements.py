"""What the NumPy and torch printers share: turning scheduled statements into lines of code."""

from __future__ import annotations

import functools
import re

import sympy as sp

from ..ops.registry import Helper, by_function, call, fact, lookup, spelling
from ..program import Plan, Program, Statement, Step, inlinable, reads
from ..shapes import batch_sized as has_batch
from ..shapes import broadcast


def fold_numbers(expr):
    """exp(-100) → 3.72e-44: code gets plain Python floats, which keep float32 arrays float32."""
    if expr is sp.I:  # in a piece of a fractional power of a negative number: NaN in real arithmetic, as in torch
        return sp.nan
    if not isinstance(expr, sp.Basic) or expr.is_Atom and not expr.is_NumberSymbol:
        return expr
    if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Rational:
        value = expr.evalf(17)
        if value.is_extended_real is False:  # (-1)**0.5 in a piece: NaN in real arithmetic, as torch computes it
            return sp.nan
        return sp.Float(value, 17)
    return expr.func(*(fold_numbers(a) for a in expr.args)) if expr.args else expr


_FINITE_STEPS = (sp.Heaviside, sp.sign)  # SymPy's own steps, which derivatives make; the ops say for the rest


def finite_where_arrays_are(expr, definitions: dict, known: dict) -> bool:
    """Whether expr is finite wherever the model's inputs and parameters are: sums and products of finite values,
    small powers, functions that stay finite; no exp, log, division or root (each is inf or nan somewhere). A name
    is looked up in `definitions` (symbol -> the statement that computes it); `known` caches the answers."""
    def finite(e) -> bool:
        if e.is_Symbol:
            if e not in known:
                known[e] = True  # an input, a parameter, a target
                statement = definitions.get(e)
                if statement is not None and statement.expr is not None:
                    known[e] = finite(statement.expr)
                elif statement is not None:  # a primitive's: finite where its operands are, if the op says so
                    known[e] = bool(fact(statement.kind, "finite")) and all(finite(o) for o in statement.operands)
            return known[e]
        if e.is_Number:
            return bool(e.is_finite)
        if isinstance(e, (sp.Add, sp.Mul)):
            return all(finite(a) for a in e.args)
        if isinstance(e, sp.Pow):
            if e.base.is_integer and e.base.is_positive:  # 1/N, N the batch size
                return True
            return e.exp.is_Integer and 0 < e.exp <= 3 and finite(e.base)
        if isinstance(e, sp.Piecewise):
            return all(finite(value) for value, _ in e.args)
        op = by_function(type(e)) if getattr(e, "is_Function", False) else None
        if isinstance(e, _FINITE_STEPS) or getattr(op, "finite", False):
            return all(finite(a) for a in e.args)
        return False

    return finite(expr)


# a Piecewise of more pieces is printed as a select: each mask's simplification grows with them (simplify.py's
# FOLD_PIECES bounds the pieces that folding makes in the first place)
MOST_MASKS = 8


@functools.lru_cache(maxsize=4096)
def first_to_hold(conditions: tuple) -> list:
    """For each piece of a Piecewise, where it is the one taken: its condition, and none before it holds."""
    masks, before = [], sp.false
    for condition in conditions:
        mask = condition if before == sp.false else sp.And(condition, sp.Not(before))
        # SymPy's simplification of a mask grows exponentially with the comparisons and flags it reads
        masks.append(mask.simplify() if len(mask.atoms(sp.Symbol, sp.core.relational.Relational)) <= 5 else mask)
        before = sp.Or(before, condition)
    return masks


def _one_call(text: str) -> bool:
    """Whether text is a name, or one call whose parenthesis closes at its end: f(a, g(b)), not f(a) & g(b)."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and char == ")" and i != len(text) - 1:
            return False
    return True


def common_factor(values) -> sp.Expr | None:
    """E such that every value is a number times E (or 0), E itself no number; else None."""
    nonzero = [value for value in values if value != 0]
    if not nonzero or all(value.is_Number for value in nonzero):
        return None
    _, factor = nonzero[0].as_coeff_Mul()
    return factor if all(sp.cancel(value / factor).is_Number for value in nonzero) else None


def statement_steps(program: Program, code: bool) -> list[Step]:
    """Each statement on a line of its own, a contraction read once printed in place, a value computed again (by
    a memory plan) shown once (the document's layout)."""
    inlined = inlinable(program, code)
    return [Step("inline" if fact(s.kind, "product") and s.tensor.symbol in inlined else "assign", s.name, s.name, s)
            for s in program.statements if not s.computed_again]


class StatementPrinter:
    """Mixed into a SymPy code printer: spells a plan's steps (or a program's statements) as lines of code."""

    backend = ""  # the name ops spell their functions for: "numpy", "torch", "text", "latex", "mathml"
    numbers_as_floats = True  # code: yes; mathematics (LaTeX, docstrings): keep e^{-100}
    code_numbers = False  # a float as code writes it (1e-5), where numbers_as_floats is off (docstrings)
    code = True  # code: returned contractions get their own line; docstrings print them in place
    _inline: dict = {}
    _chunk = 0  # printing a line a chunk of this many samples at a time
    carrier = "x"  # the input whose dtype and device made arrays take
    # Piecewise as arithmetic on masks wherever its pieces are finite; else only with one mask and one product (in
    # torch, where a select costs about two fresh arrays, and each mask and product one)
    select_by_arithmetic = True

    @property
    def dtype_text(self) -> str:
        return f"{self.carrier}.dtype"

    @property
    def device_text(self) -> str:
        return f"{self.carrier}.device"

    @property
    def placement(self) -> str:
        """The arguments that give a new array its dtype (and, in torch, device)."""
        return self.dtype_text

    def bind(self, plan: Plan | Program, carrier: str = "x"):
        """Print `plan`'s steps (a Program, as the document prints it: each statement on a line of its own)."""
        self._plan = plan if isinstance(plan, Plan) else Plan(plan, statement_steps(plan, self.code))
        self._program = self._plan.program
        self.carrier = carrier
        self._inline: dict[sp.Symbol, str] = {}
        self._inline_statements: dict[sp.Symbol, Statement] = {}
        self.helpers: dict[str, str] = {}  # name -> source of a function the printed code calls
        # what computes each name, and which names are finite wherever the inputs are (for branchless)
        self._definitions = {statement.symbol: statement for statement in self._program.statements}
        self._finite: dict[sp.Symbol, bool] = {}
        return self

    def in_dtype(self, text: str) -> str:
        """An array's code, converted to the dtype of the arrays (code backends)."""
        return text

    def _print_Symbol(self, expr):
        if self._chunk:  # in a line computed a chunk of samples at a time: the chunk's rows of each array
            if expr in self._inline_statements:
                return f"({self.statement(self._inline_statements[expr])})"
            shape = self._program.shapes.get(expr)
            if shape is not None:
                self._chunk_reads.append((super()._print_Symbol(expr), bool(shape) and has_batch((shape[0],))))
                if self._chunk_reads[-1][1]:
                    return f"{self._chunk_reads[-1][0]}[start : start + {self._chunk}]"
        if expr in self._inline:
            return self._inline[expr]
        return super()._print_Symbol(expr)

    def _print(self, expr, **kwargs):
        """A function as its op spells it for this backend (a helper of the module's own, a library call), else as
        SymPy prints it."""
        spelled = spelling(type(expr), self.backend) if getattr(expr, "is_Function", False) else None
        if spelled is None:
            return super()._print(expr, **kwargs)
        if isinstance(spelled, Helper):
            return f"{self.use(spelled)}({', '.join(self._print(a) for a in expr.args)})"
        if isinstance(spelled, str):
            return self.call(spelled, expr.args)
        return spelled(self, expr)

    def branchless(self, expr: sp.Piecewise) -> str | None:
        """A Piecewise as arithmetic on 0/1 masks, Σ v_i·[piece i is the first to hold], where its values are finite
        wherever the arrays are (so that 0 times the values not taken stays 0), else None. np.where, np.select and
        torch.where pick each entry with a branch that random data mispredicts: some 20x the time of a multiply."""
        pieces = list(expr.args)
        if getattr(self, "_program", None) is None or len(pieces) > MOST_MASKS:
            return None  # many pieces (a product of clamps, folded): a select, as SymPy's simplify of masks is slow
        clamped = self.clamped(expr)
        if clamped is not None:
            return clamped
        if pieces[-1][1] != sp.true or not all(finite_where_arrays_are(value, self._definitions, self._finite)
                                               for value, _ in pieces):
            return None
        given = [self._given(value) for value, _ in pieces]
        if any(given) and all(value.is_Integer or mine for (value, _), mine in zip(pieces, given, strict=True)) and \
                any(condition.atoms(sp.Eq, sp.Ne) for _, condition in pieces):
            return None  # ids or class indices, an integer in place of one (an ignored class): they stay integers
        masks = first_to_hold(tuple(condition for _, condition in pieces))
        # a piece that is never the first to hold (an hvp's Piecewise, whose conditions overlap) is left out
        kept = [i for i, mask in enumerate(masks) if mask != sp.false or i == len(masks) - 1]
        values, masks = [pieces[i][0] for i in kept], [masks[i] for i in kept]
        factor = common_factor(values)
        if not self.select_by_arithmetic and (len(values) > 2 or factor is None and
                                              not all(value.is_Number for value in values)):
            return None  # one mask, and one product: the only form that beats a select in this backend
        if factor is not None:  # t·(0.01 + 0.99·[z > 0]): one product with the array, not one per piece
            numbers = [sp.cancel(value / factor) if value != 0 else sp.S.Zero for value in values]
            return f"({self.parenthesize(factor, 50)}*{self._mask_sum(numbers, masks)})"
        if all(value.is_Number for value in values):
            return self._mask_sum(values, masks)
        terms = [self._times_mask(value, mask) for value, mask in zip(values, masks, strict=True)
                 if value != 0 and mask != sp.false]
        return "(" + " + ".join(terms).replace("+ -", "- ") + ")" if terms else "0"

    clamp_function: str | None = None  # the backend's clamp(u, low, high), where it has one

    def clamped(self, expr: sp.Piecewise) -> str | None:
        """k·clamp(u, −c, c) for Piecewise((k·u, |u| < c), (k·c·sign(u), True)), else None: the Huber and smooth L1
        losses' derivatives, one pass where the pieces take several (the same value everywhere: ±k·c at |u| = c, NaN
        at NaN). A spelling, not a simplification: an hvp differentiates the Piecewise, whose derivative at |u| = c is
        the loss's (torch's), where clamp's would follow clamp's convention."""
        if self.clamp_function is None or len(expr.args) != 2 or expr.args[1][1] != sp.true:
            return None
        (inner, condition), (outer, _) = expr.args
        if condition.is_Symbol and condition in self._definitions:  # the mask named by a statement of its own
            condition = self._definitions[condition].expr
        if isinstance(condition, sp.StrictGreaterThan):
            condition = condition.reversed
        if not isinstance(condition, sp.StrictLessThan):
            return None
        magnitude, c = condition.lhs, condition.rhs
        if magnitude.is_Symbol and magnitude in self._definitions:  # |u| named by a statement of its own
            magnitude = self._definitions[magnitude].expr
        if not (isinstance(magnitude, sp.Abs) and c.is_Number and c > 0):
            return None
        for u in (magnitude.args[0], -magnitude.args[0]):  # |t − z| read as |z − t| where the pieces say z − t
            k = sp.cancel(inner / u)
            if k != 0 and not k.has(u) and sp.expand(outer - k * c * sp.sign(u)) == 0:
                clamp = f"{self._module_format(self.clamp_function)}({self._print(u)}, {self._print(-c)}, " \
                        f"{self._print(c)})"
                return clamp if k == 1 else f"{self.parenthesize(k, 50)}*{clamp}"
        return None

    def _given(self, value) -> bool:
        """Whether value is an input or target as given, or its entries moved (sliced, reshaped): maybe integers."""
        statement = self._definitions.get(value) if value.is_Symbol else None
        if statement is None:
            return value.is_Symbol
        return bool(fact(statement.kind, "moves")) and bool(statement.operands) and self._given(statement.operands[0])

    def _maybe_integers(self, expr) -> bool:
        """Whether expr reads only inputs as given (or their entries moved), with integer numbers: maybe integers
        (class indices expanded along a new axis), which a broadcast keeps in their own dtype."""
        reads = expr.free_symbols
        return bool(reads) and all(a in self._program.shapes and self._given(a) for a in reads) and \
            all(number.is_Integer for number in expr.atoms(sp.Number))

    def _mask_sum(self, numbers, masks) -> str:
        """k_n + Σ (k_i − k_n)·[mask_i], for numbers k; k·[a ≠ b] for (0 where a = b, k elsewhere): one comparison, not
        1 − [a = b] (a ≠ b is a = b's complement even at NaN, where a < b and a ≥ b both fail)."""
        last = numbers[-1]
        if len(numbers) == 2 and numbers[0] == 0 and isinstance(masks[0], sp.Eq):
            return "(" + self._times_mask(last, sp.Ne(*masks[0].args, evaluate=False)) + ")"
        text = [self._times_mask(number - last, mask) for number, mask in zip(numbers[:-1], masks[:-1], strict=True)
                if number != last]
        if last != 0 or not text:
            text.insert(0, self._print(last))
        return "(" + " + ".join(text).replace("+ -", "- ") + ")"

    def number_mask(self, condition) -> str:
        """[condition] as 0s and 1s of the arrays' dtype."""
        text = self._print(condition)
        return self.in_dtype(text if re.fullmatch(r"[\w.]+(\(.*\))?", text) and _one_call(text) else f"({text})")

    def _times_mask(self, value, mask) -> str:
        """value·[mask], the mask as numbers of the arrays' dtype."""
        if mask == sp.true:
            return self._print(value)
        mask_text = self.number_mask(mask)
        if value.is_Number and value < 0:
            return "-" + (mask_text if float(value) == -1 else f"{self._print(-value)}*{mask_text}")
        return mask_text if value.is_Number and float(value) == 1 else f"{self.parenthesize(value, 50)}*{mask_text}"

    def call(self, function: str, args) -> str:
        """function(args) in this backend's language."""
        return f"{self._module_format(function)}({', '.join(self._print(a) for a in args)})"

    def _print_Float(self, expr):
        """A number as a person writes it: the shortest decimal that is the same float64 (1e-5, not 1.000e-5)."""
        if not self.numbers_as_floats and not self.code_numbers:
            return super()._print_Float(expr)
        text = repr(float(expr))
        return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)

    def doprint(self, expr, *args, **kwargs):
        return super().doprint(fold_numbers(expr) if self.numbers_as_floats else expr, *args, **kwargs)

    def _as_ordered_terms(self, expr, order=None):
        """Sums read as books write them: z2 - t, and x @ w0.T + b0 with the product first."""
        terms = super()._as_ordered_terms(expr, order=order)
        first = self._inline.keys() | getattr(self, "contractions", set())
        return sorted(terms, key=lambda t: (t.could_extract_minus_sign(), not (t.free_symbols & first)))

    def lines(self) -> list[str]:
        """The plan's steps, spelled: the lines of the function's body."""
        return [line for line, _ in self.spelled()]

    def spelled(self) -> list[tuple[str, Step]]:
        """(line, the step it spells) for each step that is a line."""
        return [(line, step) for step in self._plan.steps if (line := self.line(step)) is not None]

    def line(self, step: Step) -> str | None:
        """One step as a line of code; None for a contraction printed in place of its one read."""
        name = step.name
        if step.chunk:
            return self.chunked(step)
        if step.kind == "inline":
            self._inline[step.statement.tensor.symbol] = f"({self.statement(step.statement)})"
            self._inline_statements[step.statement.tensor.symbol] = step.statement
            return None
        if step.kind == "free":
            return "del " + ", ".join(step.names)
        if step.kind == "note":
            return f"# {name} again, from values kept anyway: cheaper than holding it until here"
        if step.kind == "alias":
            return f"{name} = {step.source}"
        if step.kind == "view":  # the statement's operand, computed into the array `name`, in its new shape
            viewed = lookup(step.statement.kind).text(self, step.statement, [name])
            return None if viewed == name else f"{name} = {viewed}"  # a view that is the array itself (NumPy's detach)
        if step.kind == "apply":
            more = [template.format(self.doprint(number)) for template, number in step.more]
            return f"{name} = {self.in_place_call(step.function, step.source or name, *more)}"
        if step.kind == "update" and step.mask:
            return f"{name} {step.operator}= {self.mask(step.expr, step.dying)}"
        if step.kind == "update":
            return self.step_line(name, step.operator, step.expr)
        statement = step.statement
        if step.source:  # a call into the array of its input (out=scores)
            return f"{name} = {call(statement.op, self.backend).spell(self, statement, [step.source], step.source)}"
        if step.expr is not None:
            return f"{name} = {self._unwrap(self.doprint(step.expr), step.expr.free_symbols)}"
        return f"{name} = {self._unwrap(self.statement(statement), reads(statement))}"

    def chunked(self, step: Step) -> str:
        """An assign step computed `step.chunk` samples at a time (plan/chunks.py): into the rows of an array made
        first, or added chunk by chunk into zeros. Lines after the first are indented as the function's body."""
        statement, size = step.statement, step.chunk
        self._chunk, self._chunk_reads = size, []
        try:
            code = self.statement(statement)
        finally:
            self._chunk = 0
        batch = next(name for name, sliced in self._chunk_reads if sliced)
        chunks = f"range(0, len({batch}), {size})"
        why = f"# {size} samples at a time: the arrays made for BLAS then hold {size} samples, not the whole batch"
        # the arrays read, in the order the code reads them: the result's dtype is theirs (float32 x, float64 params)
        arrays = list(dict.fromkeys(name for name, _ in self._chunk_reads))
        if step.summed:  # zeros first: an empty batch sums to zeros of the result's shape
            return (f"{why}\n    {step.name} = {self.new_array(self.shape_text(statement.shape), arrays, True)}\n"
                    f"    for start in {chunks}:\n        {step.name} += {code}")
        shape = (f"len({batch})", *(self.doprint(d) for d in statement.shape[1:]))
        return (f"{why}\n    {step.name} = {self.new_array('(' + ', '.join(shape) + ')', arrays)}\n"
                f"    for start in {chunks}:\n        {step.name}[start : start + {size}] = {code}")

    def new_array(self, shape: str, of: list, zeros: bool = False) -> str:
        """A new array of `shape` (code) in the dtype that arithmetic on the arrays `of` gives: zeros, or entries not
        yet set."""
        raise NotImplementedError(f"the {self.backend} printer makes no arrays of its own")

    def step_line(self, name: str, operator: str, rest: sp.Expr) -> str:
        """name += rest or name *= rest, as `-=` or `/=` where that reads better."""
        operator, rest = ("-", -rest) if operator == "+" and rest.could_extract_minus_sign() else \
            ("/", 1 / rest) if operator == "*" and rest.is_Pow and rest.exp == -1 else (operator, rest)
        return f"{name} {operator}= {self._unwrap(self.doprint(rest), rest.free_symbols)}"

    def in_place_call(self, function: str, array: str, *more: str) -> str:
        """function(array, *more) written into array's own memory."""
        raise NotImplementedError

    def mask(self, u: sp.Expr, dying: bool = False) -> str:
        """H(u) as a factor that multiplies an array in place: a bool array (`dying`: u is read for the last
        time, and its array may be overwritten)."""
        return f"({self.doprint(u)} > 0)"

    def _unwrap(self, code: str, reads=None) -> str:
        """f((a @ b)) reads better as f(a @ b). `reads`: the symbols the code reads, if known (faster)."""
        texts = self._inline.values() if reads is None else [self._inline[s] for s in reads if s in self._inline]
        for text in texts:
            if code == text:  # a lone product: scores = (c*q) @ k.mT
                return text[1:-1]
            code = code.replace(f"({text})", text)
            if code.startswith(text + " + ") or code.startswith(text + " - "):
                code = text[1:-1] + code[len(text):]  # x @ w0.T + b0: @ binds tighter than + and -
        return code

    def output(self, statement: Statement) -> str:
        code = self.doprint(statement.expr)
        if statement.expr in self._inline:
            code = code[1:-1]  # a lone contraction needs no parentheses
        code = self._unwrap(code, statement.expr.free_symbols)
        return self.broadcast(code, statement.shape) if statement.broadcast else code

    def shape_text(self, shape) -> str:
        dims = [self.doprint(d) for d in shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def statement(self, s: Statement) -> str:
        if s.kind == "expr":
            return self.doprint(s.expr)
        operands = [self.doprint(op) for op in s.operands]
        if s.kind == "call":  # the backend's one call for an op
            return call(s.op, self.backend).spell(self, s, operands, "")
        for i, (value, wide) in enumerate(zip(s.tensor.operands, s.broadcast_operands, strict=True)):
            if wide:  # a constant as computed, where an array is read: give it its shape
                operands[i] = self.broadcast(operands[i], value.shape, keep_dtype=self._maybe_integers(s.operands[i]))
        op = lookup(s.kind)  # a primitive: the op spells it
        if op.parenthesized:
            operands = [self.parenthesize_operand(e, text) for e, text in zip(s.operands, operands, strict=True)]
        return op.text(self, s, operands)

    def shape_of(self, expr) -> tuple:
        """The shape an expression has as computed."""
        return broadcast(*(self._program.shapes.get(s, ()) for s in expr.free_symbols))

    def computed(self) -> set:
        """The values the program computes (not its inputs)."""
        return {sp.Symbol(s.name, real=True) for s in self._program.statements}

    def use(self, helper: Helper) -> str:
        """A helper function, defined once at the top of the module; its name, to call it."""
        self.helpers[helper.name] = helper.source
        return helper.name

    def parenthesize_operand(self, expr: sp.Expr, text: str) -> str:
        return text if (expr.is_Symbol or expr.is_Function) else f"({text})"

    # -- what the ops' spellings share -------------------------------------------------------------------------
    def dims_text(self, shape) -> str:
        """A shape for reshape: the batch size as -1, so that no N need be in scope; () as reshape(())."""
        dims = ["-1" if has_batch((d,)) else self.doprint(d) for d in shape]
        return "(" + ", ".join(dims) + ")" if dims else "(())"
