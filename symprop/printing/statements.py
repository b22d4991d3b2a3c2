"""What the NumPy and torch printers share: turning scheduled statements into lines of code."""

from __future__ import annotations

import re

import sympy as sp

from ..ops.einsum import contraction_form
from ..ops.registry import Helper, call, spelling
from ..program import Plan, Program, Statement, Step, inlinable, reads
from ..shapes import batch_sized as has_batch
from ..shapes import broadcast


def fold_numbers(expr):
    """exp(-100) → 3.72e-44: code gets plain Python floats, which keep float32 arrays float32."""
    if not isinstance(expr, sp.Basic) or expr.is_Atom and not expr.is_NumberSymbol:
        return expr
    if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Rational:
        return sp.Float(expr.evalf(17), 17)
    return expr.func(*(fold_numbers(a) for a in expr.args)) if expr.args else expr


def _one_array_each(step: str, rest):
    """x *= c·a as x *= a, then x *= c: no array for c·a."""
    if step == "*" and rest.is_Mul and all(f.is_Symbol or f.is_number for f in rest.args):
        arrays = [f for f in rest.args if f.is_Symbol]
        numbers = sp.Mul(*(f for f in rest.args if f.is_number))
        return [("*", a) for a in arrays] + ([("*", numbers)] if numbers != 1 else [])
    return [(step, rest)]


def statement_steps(program: Program, code: bool) -> list[Step]:
    """Each statement on a line of its own, a contraction read once printed in place, a value computed again (by
    a memory plan) shown once (the document's layout)."""
    inlined = inlinable(program, code)
    return [Step("inline" if s.kind == "einsum" and s.tensor.symbol in inlined else "assign", s.name, s.name, s)
            for s in program.statements if not s.computed_again]


class StatementPrinter:
    """Mixed into a SymPy code printer: spells a plan's steps (or a program's statements) as lines of code."""

    backend = ""  # the name ops spell their functions for: "numpy", "torch", "text", "latex", "mathml"
    array_module = ""  # "np" or "torch"
    numbers_as_floats = True  # code: yes; mathematics (LaTeX, docstrings): keep e^{-100}
    code_numbers = False  # a float as code writes it (1e-5), where numbers_as_floats is off (docstrings)
    code = True  # code: returned contractions get their own line; docstrings print them in place
    _inline: dict = {}
    carrier = "x"  # the input whose dtype and device made arrays take

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
        return self

    def in_dtype(self, text: str) -> str:
        """An array's code, converted to the dtype of the arrays (code backends)."""
        return text

    def _print_Symbol(self, expr):
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
            self.helpers[spelled.name] = spelled.source
            return f"{spelled.name}({', '.join(self._print(a) for a in expr.args)})"
        if isinstance(spelled, str):
            return self.call(spelled, expr.args)
        return spelled(self, expr)

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
        if step.kind == "view":
            tensor = step.statement.tensor
            return f"{name} = {self.rearrange(tensor, [name], [tensor.operands[0].shape])}"
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
                operands[i] = self.broadcast(operands[i], value.shape)
        if s.kind == "einsum":
            return self.einsum(s.tensor.spec, [self.parenthesize_operand(op, text)
                                               for op, text in zip(s.operands, operands, strict=True)],
                               [value.shape for value in s.tensor.operands])
        if s.kind in ("slice", "pad", "concat", "rearrange", "gather", "scatter_add"):
            texts = [self.parenthesize_operand(op, text) for op, text in zip(s.operands, operands, strict=True)]
            shapes = [value.shape for value in s.tensor.operands]
            return getattr(self, s.kind)(s.tensor, texts, shapes)
        if s.kind == "constant":
            return self.causal_mask(s.shape[0]) if s.tensor.spec == "causal" else self.sinusoid(*s.shape)
        if s.kind == "padding":  # (n, t) booleans -> (n, 1, 1, t): -inf where True, else 0
            return self.padding_mask(operands[0])
        if s.kind == "map":
            return operands[0]
        if s.kind == "sum" and (text := self._sum_of_product(s)):
            return text
        if s.kind in ("sum", "max"):
            ndim = len(s.tensor.operands[0].shape)
            if len(s.shape) == ndim:
                return self.reduce(s.kind, operands[0], s.tensor.axes, keepdims=True)
            if len(s.shape) == ndim - len(s.tensor.axes):
                return self.reduce(s.kind, operands[0], s.tensor.axes, keepdims=False)
            return self.reshape(self.reduce(s.kind, operands[0], s.tensor.axes, keepdims=True), s.shape)
        if s.kind == "onehot":
            return self.onehot(operands[0], int(s.tensor.key))
        raise ValueError(s.kind)

    def _sum_of_product(self, s: Statement) -> str | None:
        """A sum of a product of two or more whole arrays (a loss; Σ_k a·da), computed without an array of
        the product (`product_sum`); None where the backend has no such call or the sum is not one."""
        operand, whole = s.operands[0], s.tensor.operands[0].shape
        keep = len(s.shape) == len(whole)
        if not (keep or len(s.shape) == len(whole) - len(s.tensor.axes)) or not operand.is_Mul or \
                any(s.broadcast_operands):
            return None
        number, factors = operand.as_coeff_mul()
        shapes = [self._shape_of(f) for f in factors]
        if sum(shape == whole for shape in shapes) < 2 or not all(f.free_symbols for f in factors) or \
                any(f.has(sp.Heaviside, sp.Piecewise) for f in factors):
            return None
        text = self.product_sum(factors, [shape == whole for shape in shapes], len(whole), s.tensor.axes, keep)
        if text is None:
            return None
        return text if number == 1 else f"-{text}" if number == -1 else f"{self.doprint(number)}*{text}"

    def _shape_of(self, expr) -> tuple:
        return broadcast(*(self._program.shapes.get(s, ()) for s in expr.free_symbols))

    def product_sum(self, factors, whole, ndim, axes, keep) -> str | None:
        """Σ over `axes` (kept as 1 if `keep`) of the product of `factors` (`whole`: which have the whole shape, of
        `ndim` axes), or None."""
        return None

    def parenthesize_operand(self, expr: sp.Expr, text: str) -> str:
        return text if (expr.is_Symbol or expr.is_Function) else f"({text})"

    # -- helper functions a code backend writes into its module once: their source is the backend's own --------
    scatter_add_source = sinusoid_source = ""

    def scatter_add(self, tensor, texts, shapes) -> str:
        self.helpers["scatter_add"] = self.scatter_add_source
        return f"scatter_add({texts[0]}, {texts[1]}, {tensor.shape[0]})"

    def sinusoid(self, length, width) -> str:
        self.helpers["sinusoid"] = self.sinusoid_source
        return f"sinusoid({length}, {width}, {self.placement})"

    batch_transpose = ".swapaxes(-1, -2)"  # the last two axes swapped: numpy 1.x has no .mT

    def einsum(self, spec: str, operands: list[str], shapes=None) -> str:
        form = contraction_form(spec)
        if form is None:
            return f"{self.array_module}.einsum({spec!r}, {', '.join(operands)})"
        if form[0] == "matmul":
            _, left, right, t_left, t_right, batched = form
            swap = self.batch_transpose if batched else ".T"
            return f"{operands[left]}{swap if t_left else ''} @ {operands[right]}{swap if t_right else ''}"
        if form[0] == "rows":
            _, operand, weight, transpose = form
            return f"{operands[operand]} @ {operands[weight]}{'.T' if transpose else ''}"
        _, left, right = form
        rows, columns = shapes[left][-1], shapes[right][-1]
        return f"{operands[left]}.reshape(-1, {rows}).T @ {operands[right]}.reshape(-1, {columns})"

    # -- moving entries: the same syntax in NumPy and torch ---------------------------
    def dims_text(self, shape) -> str:
        """A shape for reshape: the batch size as -1, so that no N need be in scope; () as reshape(())."""
        dims = ["-1" if has_batch((d,)) else self.doprint(d) for d in shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")" if dims else "(())"

    def slice(self, tensor, texts, shapes) -> str:
        (axis,), (start, stop), full = tensor.axes, tensor.bounds, shapes[0][tensor.axes[0]]
        bound = f"{start if start else ''}:{stop if stop != full else ''}"
        return f"{texts[0]}[{', '.join([':'] * axis + [bound])}]"

    def rearrange(self, tensor, texts, shapes) -> str:
        text = texts[0]
        if tuple(tensor.split) != tuple(shapes[0]):
            text += f".reshape{self.dims_text(tensor.split)}"
        if tensor.perm != tuple(range(len(tensor.perm))):
            text += self.permute(tensor.perm)
        if tuple(tensor.split[a] for a in tensor.perm) != tuple(tensor.shape):
            text += f".reshape{self.dims_text(tensor.shape)}"
        return text

    def permute(self, perm) -> str:
        return f".transpose{tuple(perm)}"

    def gather(self, tensor, texts, shapes) -> str:
        return f"{texts[0]}[{texts[1]}]"
