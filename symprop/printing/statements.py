"""What the NumPy and torch printers share: turning scheduled statements into lines of code."""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..ops.registry import Helper, in_place, spelling
from ..schedule import Program, Statement, inlinable, reads
from ..shapes import batch_sized as has_batch
from ..shapes import broadcast
from .in_place import WORTH_IT, full_steps, in_place_lines


def matmul_form(spec: str):
    """For a two-operand, 2-D einsum with one summed index: (left, right, transpose_left,
    transpose_right) such that left' @ right' computes it; None otherwise."""
    inputs, out = spec.split("->")
    parts = inputs.split(",")
    if len(parts) != 2 or len(out) != 2 or any(len(p) != 2 for p in parts):
        return None
    summed = set(parts[0]) & set(parts[1])
    if len(summed) != 1 or summed & set(out) or set(parts[0]) ^ set(parts[1]) != set(out):
        return None
    (k,) = summed
    left = 0 if out[0] in parts[0] else 1
    right = 1 - left
    return left, right, parts[left] != out[0] + k, parts[right] != k + out[1]


def contraction_form(spec: str):
    """How a two-operand einsum is one matrix product, or None. One of:
    ("matmul", left, right, transpose_left, transpose_right, batched): leading axes common to both
        operands and the output are a batch, the last two a matrix product: q @ k.mT;
    ("rows", operand, weight, transpose_weight): an operand of any rank times a matrix over its last
        axis, the leading axes carried along as matmul broadcasts them: x @ w.T;
    ("flatten", left, right): both operands flattened over their common leading axes (all summed),
        then leftᵀ right: dz.reshape(-1, o).T @ x.reshape(-1, i)."""
    inputs, out = spec.split("->")
    parts = inputs.split(",")
    if len(parts) != 2:
        return None
    a, b = parts
    batch = 0
    while batch < min(len(a), len(b), len(out)) and a[batch] == b[batch] == out[batch]:
        batch += 1
    form = matmul_form(f"{a[batch:]},{b[batch:]}->{out[batch:]}")
    if form is not None:
        return ("matmul", *form, batch > 0)
    summed = (set(a) & set(b)) - set(out)
    if not batch and len(summed) == 1 and len(b) == 2 and a[-1] in summed and a[-1] in b:
        (k,) = summed
        r = b.replace(k, "")
        if out == a[:-1] + r:
            return ("rows", 0, 1, b[0] != k)
    for left, right in ((a, b), (b, a)):
        lead = len(left) - 1
        if not batch and len(left) == len(right) and left[:lead] == right[:lead] and set(left[:lead]) == summed \
                and out == left[-1] + right[-1]:
            return ("flatten", 0 if left is a else 1, 1 if left is a else 0)
    return None


def book_product(form) -> tuple[int, int, bool, bool]:
    """A contraction form as a book writes it, A B with either side transposed: (left, right,
    transpose_left, transpose_right). A flattened product is leftᵀ right over its (sample, position) rows."""
    if form[0] == "matmul":
        return form[1], form[2], form[3], form[4]
    if form[0] == "rows":
        return form[1], form[2], False, form[3]
    return form[1], form[2], True, False


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


class StatementPrinter:
    """Mixed into a SymPy code printer: prints a Program's statements as code lines."""

    backend = ""  # the name ops spell their functions for: "numpy", "torch", "text", "latex", "mathml"
    array_module = ""  # "np" or "torch"
    numbers_as_floats = True  # code: yes; mathematics (LaTeX, docstrings): keep e^{-100}
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

    def bind(self, program: Program, carrier: str = "x"):
        self._program = program
        self.carrier = carrier
        self._inline: dict[sp.Symbol, str] = {}
        self._inline_statements: dict[sp.Symbol, Statement] = {}
        self._inlined = inlinable(program, code=self.code)  # einsums printed in place of their one use
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

    def in_place_step(self, expr):
        """(the in-place call's name, its other arguments, the argument it overwrites) when this backend applies
        expr's function in place (np.exp(a, out=a); max(a, 0) as torch.clamp_(a, min=0)); None otherwise."""
        spelled = in_place(expr.func, self.backend) if getattr(expr, "is_Function", False) else None
        arrays = [a for a in expr.args if not a.is_number] if spelled else []
        numbers = [self.doprint(a) for a in expr.args if a.is_number]
        if len(arrays) != 1 or len(numbers) != len(spelled) - 1:  # one array; each template takes one number
            return None
        return spelled[0], tuple(t.format(n) for t, n in zip(spelled[1:], numbers, strict=True)), arrays[0]

    def doprint(self, expr, *args, **kwargs):
        return super().doprint(fold_numbers(expr) if self.numbers_as_floats else expr, *args, **kwargs)

    def _as_ordered_terms(self, expr, order=None):
        """Sums read as books write them: z2 - t, and x @ w0.T + b0 with the product first."""
        terms = super()._as_ordered_terms(expr, order=order)
        first = self._inline.keys() | getattr(self, "contractions", set())
        return sorted(terms, key=lambda t: (t.could_extract_minus_sign(), not (t.free_symbols & first)))

    def lines(self) -> list[str]:
        out = []
        frees = self._frees() if self.free_dead else {}
        for i, statement in enumerate(self._program.statements):
            code = self.statement(statement)
            if statement.kind == "einsum" and statement.tensor.symbol in self._inlined:
                self._inline[statement.tensor.symbol] = f"({code})"
                self._inline_statements[statement.tensor.symbol] = statement
            elif self.in_place and (split := self._in_place(statement)) and \
                    (fused := self.fused(self._inline_statements[split[0]], *split[1:])):
                out.append(f"{statement.name} = {fused}")
            elif self.in_place and split:
                product, operator, rest = split
                mask = isinstance(rest, sp.Heaviside) and rest.args[1] == 0 and operator == "*"
                dying = mask and rest.args[0].name in frees.get(i, ()) and rest.args[0] in self._own_arrays()
                factor = None if mask or operator != "*" else self._factor_lines(statement, rest, frees.get(i, ()))
                rest_text = self.mask(rest.args[0], dying) if mask else self.doprint(rest)
                out.append(f"{statement.name} = {self._inline[product][1:-1]}")
                early = [name for name in frees.get(i, ()) if sp.Symbol(name, real=True) not in rest.free_symbols]
                if early:  # read by the product only: freed before the mask's temporary is made
                    out.append("del " + ", ".join(early))
                    frees[i] = [name for name in frees[i] if name not in early]
                if factor is not None:
                    rest_text, lines = factor
                    out += lines
                    frees[i] = [*frees.get(i, []), rest_text]
                out.append(f"{statement.name} {operator}= {self._unwrap(rest_text, rest.free_symbols)}")
            elif self.reuse_dead and (reused := self._reuse(statement, frees.get(i, ()))):
                out += reused
            elif statement.computed_again and self._worth_evaluating_in_place(statement.expr, statement):
                out += [self._unwrap(line) for line in
                        in_place_lines(self, statement.name, statement.expr, self._full(statement))]
            else:
                out.append(f"{statement.name} = {self._unwrap(code, reads(statement))}")
            if frees.get(i):
                out.append("del " + ", ".join(frees[i]))
        return out

    in_place = False  # code backends: z0 = x @ w0.T, then z0 += b0, into the product's own fresh array
    reuse_dead = False  # NumPy: shifted = scores; shifted -= m, into the array of a value read last here
    FRESH = ("expr", "einsum", "sum", "max", "map", "onehot", "softmax", "log_softmax")  # code makes a new array
    fuses_softmax = False  # torch: a softmax the graph builds is printed as one call (schedule.plan_memory)

    def _reuse(self, statement, dying, shape=None) -> list[str] | None:
        """Lines that compute an elementwise statement into the array of a value it reads for the last time
        (same shape, made by a statement of its own, so no other name sees it): a + b as a += b, exp(a) as
        exp(a, out=a). None where no such value is at hand."""
        if statement.kind in ("softmax", "log_softmax"):  # torch.softmax(scores, dim=3, out=scores)
            z = statement.operands[0]
            if z.is_Symbol and z.name in dying and z in self._own_arrays() and z not in self._inline and \
                    self._program.shapes.get(z) == statement.shape:
                return [f"{statement.name} = {self.softmax(statement.kind, z.name, statement.tensor.axes[0], z.name)}"]
            return None
        if statement.kind == "rearrange" and not statement.operands[0].is_Symbol and not any(
                statement.broadcast_operands):  # the operand computed in place, then viewed in its new shape
            operand, name = statement.operands[0], statement.name
            lines = self._reuse(replace(statement, kind="expr", expr=operand), dying,
                                statement.tensor.operands[0].shape)
            view = self.rearrange(statement.tensor, [name], [statement.tensor.operands[0].shape])
            return lines and lines + [f"{name} = {view}"]
        expr = statement.operands[0] if statement.kind == "map" and not any(statement.broadcast_operands) else \
            statement.expr  # a map is a stored elementwise value: the same
        if statement.kind not in ("expr", "map") or expr is None or expr.is_Symbol:
            return None
        shapes = self._program.shapes
        shape = shape or shapes.get(sp.Symbol(statement.name, real=True))
        own = self._own_arrays()
        candidates = [sp.Symbol(name, real=True) for name in dying]
        candidates = [a for a in candidates if a in own and shapes.get(a) == shape and a not in self._inline]
        best = None
        for a in candidates:
            steps = self._steps(expr, a)
            if steps is not None and (best is None or len(steps) < len(best[1])):
                best = a, steps
        if best is None:
            return None
        return self._step_lines(statement.name, *best)

    def _full(self, statement):
        """Whether an expression has the statement's whole shape as computed."""
        whole = self._program.shapes.get(sp.Symbol(statement.name, real=True))
        return lambda e: self._shape_of(e) == whole

    def _worth_evaluating_in_place(self, expr, statement) -> bool:
        return self.reuse_dead and not expr.has(sp.Piecewise, sp.Heaviside) and \
            full_steps(expr, self._full(statement)) >= WORTH_IT

    def _factor_lines(self, statement, factor, dying) -> tuple[str, list[str]] | None:
        """(name, lines) that compute a factor of a product into an array of their own before the product takes
        it: into the array of the one value it reads, where that is read for the last time (tanh's 1 − h²), or
        step by step into a new one where, as written, it would make many arrays (GELU′); None otherwise."""
        local = self._local_factor(statement, factor, dying)
        if local is not None:
            name, h, steps = local
            return name, self._step_lines(name, h, steps)
        if self._worth_evaluating_in_place(factor, statement):
            name = f"{statement.name}_local"
            return name, [self._unwrap(line) for line in in_place_lines(self, name, factor, self._full(statement))]
        return None

    def _local_factor(self, statement, factor, dying):
        """(name, h, steps) when a factor of a product is an elementwise function of one value h alone, read for
        the last time here, with the product's shape and an array of its own (tanh's 1 − h²); None otherwise."""
        if len(factor.free_symbols) != 1 or factor.is_Symbol:
            return None
        (h,) = factor.free_symbols
        shapes = self._program.shapes
        if h.name not in dying or h not in self._own_arrays() or h in self._inline or \
                shapes.get(h) != shapes.get(sp.Symbol(statement.name, real=True)):
            return None
        steps = self._steps(factor, h)
        taken = {s.name for s in self._program.statements}
        name = f"d{h.name}_{statement.name}" if statement.name.startswith("d") else f"{h.name}_slope"
        return None if steps is None or name in taken else (name, h, steps)

    def _step_lines(self, name, a, steps) -> list[str]:
        """name = a, then the steps applied to it in place."""
        lines = [f"{name} = {a.name}"]
        for step, rest in [split for each in steps for split in _one_array_each(*each)]:
            lines.append(self.step_line(name, step, rest) if step in ("+", "*") else
                         f"{name} = {self.in_place_call(step, name, *rest)}")
        if len(lines) > 1 and lines[1].startswith(f"{name} = "):  # a call first: e = np.exp(shifted, out=shifted)
            lines[:2] = [f"{name} = {self.in_place_call(steps[0][0], a.name, *steps[0][1])}"]
        return lines

    def step_line(self, name: str, operator: str, rest: sp.Expr) -> str:
        """name += rest or name *= rest, as `-=` or `/=` where that reads better."""
        operator, rest = ("-", -rest) if operator == "+" and rest.could_extract_minus_sign() else \
            ("/", 1 / rest) if operator == "*" and rest.is_Pow and rest.exp == -1 else (operator, rest)
        return f"{name} {operator}= {self._unwrap(self.doprint(rest), rest.free_symbols)}"

    def _own_arrays(self) -> set:
        """The values whose arrays no other name shares (made by a statement of their own, in the arrays' dtype)."""
        if getattr(self, "_owned_in", None) is not self._program:  # once per program printed
            self._owned_in, self._owned = self._program, {
                sp.Symbol(s.name, real=True) for s in self._program.statements if s.kind in self.FRESH and (
                    "softmax" in s.kind or (s.kind == "einsum" and len(s.operands) == 2) or not any(
                        (e.is_Symbol and e not in self._inlined) or e.has(sp.Piecewise)  # a name for another's array
                        for e in (s.expr, *s.operands[:1]) if e is not None))}
            frees = self._frees() if self.free_dead else {}
            for i, s in enumerate(self._program.statements):  # a new shape of an array whose name dies there
                operand = s.operands[0] if s.kind == "rearrange" else None
                if operand is not None and operand in self._owned and operand.name in frees.get(i, ()):
                    self._owned.add(sp.Symbol(s.name, real=True))
        return self._owned

    def _steps(self, expr, a):
        """expr as steps applied to a in place, innermost first: [("+", rest), ("*", rest), ("exp", ())];
        None if it is not one. Only the innermost step may read a again (its operand is evaluated first)."""
        if expr == a:
            return []
        if expr.is_Add or expr.is_Mul:
            inner = [arg for arg in expr.args if arg.has(a)]
            if a in expr.args:
                return [("+" if expr.is_Add else "*", expr.func(*(arg for arg in expr.args if arg != a)))]
            if len(inner) != 1:
                return None
            steps = self._steps(inner[0], a)
            rest = expr.func(*(arg for arg in expr.args if arg is not inner[0]))
            return None if steps is None else steps + [("+" if expr.is_Add else "*", rest)]
        if (step := self.in_place_step(expr)) is not None:
            name, more, inner = step
            steps = self._steps(inner, a)
            return None if steps is None else steps + [(name, more)]
        if expr.is_Pow and expr.exp == 2:
            steps = self._steps(expr.base, a)
            return None if steps is None else steps + [("square", ())]
        return None

    def in_place_call(self, function: str, array: str, *more: str) -> str:
        """function(array, *more) written into array's own memory."""
        raise NotImplementedError

    free_dead = False  # code backends: `del z0` after the last read of a batch-sized array

    def fused(self, product: Statement, operator: str, rest: sp.Expr) -> str | None:
        """One call for a product and what is added to it (torch: x @ w.T + b is F.linear); None if none."""
        return None

    def mask(self, u: sp.Expr, dying: bool = False) -> str:
        """H(u) as a factor that multiplies an array in place: a bool array (`dying`: u is read for the last
        time, and its array may be overwritten)."""
        return f"({self.doprint(u)} > 0)"

    def _frees(self) -> dict[int, list[str]]:
        """Statement index -> the batch-sized arrays last read there (and not returned), up to the last
        statement: freeing them there keeps peak memory near what the backward pass needs at once."""
        program = self._program
        deferred: dict[sp.Symbol, set] = {}  # an inlined contraction's operands are read where it is printed
        last: dict[sp.Symbol, int] = {}

        def through_deferred(symbols: set) -> set:  # each deferred set is already expanded: one pass
            return (symbols - deferred.keys()) | set().union(*(deferred[s] for s in symbols & deferred.keys()))

        for i, statement in enumerate(program.statements):
            read = through_deferred(reads(statement))
            if statement.kind == "einsum" and statement.tensor.symbol in self._inlined:
                deferred[statement.tensor.symbol] = read
                continue
            for symbol in read:
                last[symbol] = i
        # a contraction printed in the return reads its operands there
        returned = through_deferred(set().union(*(o.expr.free_symbols for o in program.outputs)))
        names = {sp.Symbol(s.name, real=True) for s in program.statements}
        frees: dict[int, list[str]] = {}
        for symbol, i in last.items():
            batch_sized = has_batch(program.shapes.get(symbol, ()))
            if i < len(program.statements) - 1 and symbol in names and symbol not in returned and batch_sized:
                frees.setdefault(i, []).append(symbol.name)
        order = {s.name: k for k, s in enumerate(program.statements)}
        return {i: sorted(names, key=order.get) for i, names in frees.items()}

    def _in_place(self, statement):
        """(product, '+' or '*', the rest) when the statement is a fresh matrix product plus or times
        something that broadcasts into it; None otherwise."""
        expr = statement.operands[0] if statement.kind == "map" else statement.expr
        if statement.kind not in ("expr", "map") or not (expr.is_Add or expr.is_Mul):
            return None
        products = [a for a in expr.args if a in self._inline]
        if len(products) != 1:
            return None
        (product,) = products
        rest = expr.func(*(a for a in expr.args if a is not product))
        shapes = self._program.shapes
        whole = shapes.get(sp.Symbol(statement.name, real=True))
        if whole is None or shapes.get(product) != whole or rest.has(product):
            return None
        return product, "+" if expr.is_Add else "*", rest

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
        if s.kind in ("softmax", "log_softmax"):
            return self.softmax(s.kind, operands[0], s.tensor.axes[0])
        raise ValueError(s.kind)

    def _sum_of_product(self, s: Statement) -> str | None:
        """A sum of a product of two or more whole arrays (a loss; softmax's Σ a·da), computed without an array of
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
