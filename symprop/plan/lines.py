"""The lines of code, as steps: where each value's array comes from, and when it is freed.

- a contraction read once is printed in place of its read (z0 = x @ w0.T + b0), and gets its own line where it is
  a gradient, so that what it reads can be freed early;
- a fresh product plus or times something takes it in place: z0 = x @ w0.T, then z0 += b0; a factor of such a
  product that would make many arrays is
  computed first, into the array of the one value it reads where that is read for the last time (1 − h², where h
  is the activation's output), or step by step into an array of its own (an activation's long derivative);
- an elementwise value is computed into the array of a value it reads for the last time (shifted = scores;
  shifted -= m; e = exp(shifted, out=shifted));
- a long value computed again is computed step by step into one array (and one more for each part that is itself
  a chain), where NumPy and eager torch make an array for every operation;
- each batch-sized array is freed after its last read (del z0).
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..ops.registry import call, fact, in_place
from ..program import Program, Step, inlinable, reads, times_sum
from ..shapes import batch_sized, broadcast

WORTH_IT = 4  # arrays an expression makes as written, from which it is evaluated in place
WORTH_IT_AGAIN = 2  # the same, for a value computed again: that is done to hold less, not to make temporaries


def lay_out(program: Program, options) -> list[Step]:
    return _Layout(program, options).steps()


class _Layout:
    def __init__(self, program: Program, options):
        self.program, self.options = program, options
        self.shapes = program.shapes
        self.inlined = inlinable(program, code=True)  # einsums printed in place of their one use
        self.statements_of = {s.tensor.symbol: s for s in program.statements if fact(s.kind, "product")}
        self.frees = self._frees()
        self.own = self._own_arrays()

    def steps(self) -> list[Step]:
        out: list[Step] = []
        frees = {i: list(names) for i, names in self.frees.items()}
        statements = self.program.statements
        for i, statement in enumerate(statements):
            dying = frees.get(i, ())
            if statement.computed_again and not (i and statements[i - 1].computed_again):
                out.append(Step("note", _last_of_run(statements, i), statement.name, again=True))
            split = self._in_place(statement)
            if fact(statement.kind, "product") and statement.tensor.symbol in self.inlined:
                out.append(Step("inline", statement.name, statement.name, statement))
            elif split:
                out += self._split(statement, split, dying, frees, i)
            elif self.options.reuse and (reused := self._reuse(statement, dying)):
                out += reused
            elif statement.computed_again and statement.expr is not None and \
                    self._worth_evaluating_in_place(statement.expr, statement):
                out += evaluate_in_place(self, statement.name, statement.expr, self._full(statement), statement.name)
            else:
                out.append(Step("assign", statement.name, statement.name, statement))
            if frees.get(i):
                out.append(Step("free", of=statement.name, names=tuple(frees[i])))
        return out

    # -- a fresh product, plus or times the rest --------------------------------------------------------------
    def _in_place(self, statement):
        """(product, '+' or '*', the rest, a number that scales the product or None) when the statement is a fresh
        matrix product (or a number times it, plus the rest) plus or times something that broadcasts into it; None
        otherwise."""
        expr = statement.operands[0] if statement.kind == "map" else statement.expr
        if statement.kind not in ("expr", "map") or not (expr.is_Add or expr.is_Mul):
            return None
        scaled = {a: a.args[1] for a in expr.args if expr.is_Add and a.is_Mul and len(a.args) == 2 and
                  a.args[0].is_number and a.args[1] in self.inlined}  # c·(q @ kᵀ) + mask: the product, then *= c
        products = [a for a in expr.args if a in self.inlined or a in scaled]
        if len(products) != 1:
            return None
        (term,) = products
        product, scale = scaled.get(term, term), term.args[0] if term in scaled else None
        rest = expr.func(*(a for a in expr.args if a is not term))
        whole = self.shapes.get(statement.symbol)
        if whole is None or self.shapes.get(product) != whole or rest.has(product):
            return None
        return product, "+" if expr.is_Add else "*", rest, scale

    def _split(self, statement, split, dying, frees, i) -> list[Step]:
        product, operator, rest, scale = split
        name = statement.name
        mask = isinstance(rest, sp.Heaviside) and rest.args[1] == 0 and operator == "*"
        masked_dies = mask and rest.args[0].name in dying and rest.args[0] in self.own
        factor = None if mask or operator != "*" else self._factor_steps(statement, rest, dying)
        out = [Step("assign", name, name, self.statements_of[product], expr=product)]
        read = self._reads_through_products(rest)
        early = [n for n in dying if sp.Symbol(n, real=True) not in read]
        if early:  # read by the product only: freed before the mask's temporary is made
            out.append(Step("free", of=name, names=tuple(early)))
            frees[i] = [n for n in frees[i] if n not in early]
        if factor is not None:
            factor_name, steps = factor
            out += steps
            frees[i] = [*frees.get(i, []), factor_name]
            rest = sp.Symbol(factor_name, real=True)
        if scale is not None:
            out.append(Step("update", name, name, operator="*", expr=scale))
        out.append(Step("update", name, name, operator=operator, expr=rest.args[0] if mask else rest, mask=mask,
                        dying=masked_dies))
        return out

    def _reads_through_products(self, expr) -> set:
        """The names expr reads, with those that a product printed in its place reads (dz_2 in (dz_2 @ w) * f)."""
        read, todo = set(), list(expr.free_symbols)
        while todo:
            symbol = todo.pop()
            if symbol not in read:
                read.add(symbol)
                if symbol in self.inlined and symbol in self.statements_of:
                    todo += reads(self.statements_of[symbol])
        return read

    def _factor_steps(self, statement, factor, dying):
        """(name, steps) that compute a factor of a product into an array of their own before the product takes
        it: into the array of the one value it reads, where that is read for the last time (1 − h²), or
        step by step into a new one where, as written, it would make many arrays (a long derivative); None
        otherwise."""
        local = self._local_factor(statement, factor, dying)
        if local is not None:
            name, h, steps = local
            return name, self._chain(name, h, steps, statement.name)
        if self._worth_evaluating_in_place(factor, statement):
            name = f"{statement.name}_local"
            return name, evaluate_in_place(self, name, factor, self._full(statement), statement.name)
        return None

    def _local_factor(self, statement, factor, dying):
        """(name, h, steps) when a factor of a product is an elementwise function of one value h alone, read for
        the last time here, with the product's shape and an array of its own (1 − h²); None otherwise."""
        if len(factor.free_symbols) != 1 or factor.is_Symbol:
            return None
        (h,) = factor.free_symbols
        if h.name not in dying or h not in self.own or h in self.inlined or \
                self.shapes.get(h) != self.shapes.get(statement.symbol):
            return None
        steps = self.in_place_steps(factor, h)
        taken = {s.name for s in self.program.statements}
        name = f"d{h.name}_{statement.name}" if statement.name.startswith("d") else f"{h.name}_slope"
        return None if steps is None or name in taken else (name, h, steps)

    # -- into the array of a value read for the last time ----------------------------------------------------
    def _reuse(self, statement, dying, shape=None) -> list[Step] | None:
        """Steps that compute an elementwise statement into the array of a value it reads for the last time
        (same shape, made by a statement of its own, so no other name sees it): a + b as a += b, exp(a) as
        exp(a, out=a). None where no such value is at hand."""
        if statement.kind == "call":  # a call that writes into its input's array (out=scores)
            z = statement.operands[0]
            if call(statement.op, self.options.backend).into_input and z.is_Symbol and z.name in dying and \
                    z in self.own and z not in self.inlined and self.shapes.get(z) == statement.shape:
                return [Step("assign", statement.name, statement.name, statement, source=z.name)]
            return None
        if fact(statement.kind, "view") and not statement.operands[0].is_Symbol and not any(
                statement.broadcast_operands):  # the operand computed in place, then viewed in its new shape
            steps = self._reuse(replace(statement, kind="expr", expr=statement.operands[0]), dying,
                                statement.tensor.operands[0].shape)
            return steps and steps + [Step("view", statement.name, statement.name, statement)]
        expr = statement.operands[0] if statement.kind == "map" and not any(statement.broadcast_operands) else \
            statement.expr  # a map is a stored elementwise value: the same
        if statement.kind not in ("expr", "map") or expr is None or expr.is_Symbol:
            return None
        shape = shape or self.shapes.get(statement.symbol)
        candidates = [sp.Symbol(name, real=True) for name in dying]
        candidates = [a for a in candidates if a in self.own and self.shapes.get(a) == shape and a not in self.inlined]
        best = None
        for a in candidates:
            steps = self.in_place_steps(expr, a)
            if steps is not None and (best is None or len(steps) < len(best[1])):
                best = a, steps
        return None if best is None else self._chain(statement.name, *best, statement.name, dying)

    def _chain(self, name, a, steps, of, dying=()) -> list[Step]:
        """name = a, then the steps applied to it in place; a call first is made into a's array directly
        (e = exp(shifted, out=shifted)). A step H(u) is a mask, as a product's is (δ *= h > 0: no array of the
        step's values in the arrays' dtype)."""
        out = [Step("alias", name, of, source=a.name)]
        for step, rest in [split for each in steps for split in _one_array_each(*each)]:
            if step == "*" and isinstance(rest, sp.Heaviside) and rest.args[1] == 0 and rest.args[0].is_Symbol:
                u = rest.args[0]
                out.append(Step("update", name, of, operator="*", expr=u, mask=True,
                                dying=u.name in dying and u in self.own and u != a))
                continue
            out.append(Step("update", name, of, operator=step, expr=rest) if step in ("+", "*") else
                       Step("apply", name, of, function=step, more=rest))
        if len(out) > 1 and out[1].kind == "apply":
            out[:2] = [replace(out[1], source=a.name)]
        return out

    def in_place_steps(self, expr, a):
        """expr as steps applied to a in place, innermost first: [("+", rest), ("*", rest), (function, ())];
        None if it is not one. Only the innermost step may read a again (its operand is evaluated first)."""
        if expr == a:
            return []
        if expr.is_Add or expr.is_Mul:
            inner = [arg for arg in expr.args if arg.has(a)]
            if a in expr.args:
                return [("+" if expr.is_Add else "*", expr.func(*(arg for arg in expr.args if arg != a)))]
            if len(inner) != 1:
                return None
            steps = self.in_place_steps(inner[0], a)
            rest = expr.func(*(arg for arg in expr.args if arg is not inner[0]))
            return None if steps is None else steps + [("+" if expr.is_Add else "*", rest)]
        if (call := self.in_place_call(expr)) is not None:
            name, more, inner = call
            steps = self.in_place_steps(inner, a)
            return None if steps is None else steps + [(name, more)]
        if expr.is_Pow and expr.exp == 2:
            steps = self.in_place_steps(expr.base, a)
            return None if steps is None else steps + [("square", ())]
        return None

    def in_place_call(self, expr):
        """(the in-place call's name, its other arguments as (template, number), the argument it overwrites) when
        the backend applies expr's function in place (np.exp(a, out=a); max(a, 0) as torch.clamp_(a, min=0))."""
        spelled = in_place(expr.func, self.options.backend) if getattr(expr, "is_Function", False) else None
        arrays = [a for a in expr.args if not a.is_number] if spelled else []
        numbers = [a for a in expr.args if a.is_number]
        if len(arrays) != 1 or len(numbers) != len(spelled) - 1:  # one array; each template takes one number
            return None
        return spelled[0], tuple(zip(spelled[1:], numbers, strict=True)), arrays[0]

    # -- what arrays there are --------------------------------------------------------------------------------
    def _own_arrays(self) -> set:
        """The values whose arrays no other name shares (made by a statement of their own, in the arrays' dtype)."""
        owned = {s.symbol for s in self.program.statements if (s.kind in ("expr", "call") or fact(s.kind, "owns_array"))
                 and (s.kind == "call" or (fact(s.kind, "product") and len(s.operands) == 2) or not any(
                (e.is_Symbol and e not in self.inlined) or e.has(sp.Piecewise)  # a name for another's array
                for e in (s.expr, *s.operands[:1]) if e is not None))}
        for i, s in enumerate(self.program.statements):  # a new shape of an array whose name dies there
            operand = s.operands[0] if fact(s.kind, "view") and not fact(s.kind, "read_only") else None
            if operand is not None and operand in owned and operand.name in self.frees.get(i, ()):
                owned.add(s.symbol)
        for group in self._sharing_groups():  # one array under several names, one of them not its owner: a view
            # or slice read while its operand lives on, or two names for it read after either is written
            if not group <= owned:
                owned -= group
        return owned

    def _sharing_groups(self) -> list[set]:
        """The sets of names that share one array: a value, its views and slices, and names given to it (a = b)."""
        root: dict = {}

        def find(a):
            while root.get(a, a) != a:
                a = root[a]
            return a

        for s in self.program.statements:
            expr = s.operands[0] if s.kind == "map" and s.operands else s.expr if s.kind == "expr" else None
            shares = fact(s.kind, "view") or fact(s.kind, "aliases")
            operand = s.operands[0] if shares and s.operands else expr if expr is not None and expr.is_Symbol and \
                expr not in self.inlined else None
            if operand is not None and operand.is_Symbol:
                root[find(s.symbol)] = find(operand)
        groups: dict = {}
        for a in root:
            groups.setdefault(find(a), {find(a)}).add(a)
        return list(groups.values())

    def _frees(self) -> dict[int, list[str]]:
        """Statement index -> the batch-sized arrays last read there (and not returned), up to the last
        statement: freeing them there keeps peak memory near what the backward pass needs at once. A value the plan
        computes again is freed after its last read before that, and again after its last read after."""
        program = self.program
        deferred: dict[sp.Symbol, set] = {}  # an inlined contraction's operands are read where it is printed
        last: dict[sp.Symbol, int] = {}
        earlier: list[tuple[sp.Symbol, int]] = []  # the last reads of values defined again after them

        def through_deferred(symbols: set) -> set:  # each deferred set is already expanded: one pass
            return (symbols - deferred.keys()) | set().union(*(deferred[s] for s in symbols & deferred.keys()))

        for i, statement in enumerate(program.statements):
            read = through_deferred(reads(statement))
            if fact(statement.kind, "product") and statement.tensor.symbol in self.inlined:
                deferred[statement.tensor.symbol] = read
                continue
            for symbol in read:
                last[symbol] = i
            if statement.symbol in last:  # defined again: its earlier value is not read from here on
                earlier.append((statement.symbol, last.pop(statement.symbol)))
        # a contraction printed in the return reads its operands there
        returned = through_deferred(set().union(*(o.expr.free_symbols for o in program.outputs)))
        names = {s.symbol for s in program.statements}
        frees: dict[int, list[str]] = {}
        if not self.options.free:
            return frees
        for symbol, i in [*earlier, *((s, i) for s, i in last.items() if s not in returned)]:
            if i < len(program.statements) - 1 and symbol in names and batch_sized(program.shapes.get(symbol, ())):
                frees.setdefault(i, []).append(symbol.name)
        order = {s.name: k for k, s in enumerate(program.statements)}
        return {i: sorted(names, key=order.get) for i, names in frees.items()}

    def _full(self, statement):
        """Whether an expression has the statement's whole shape as computed."""
        whole = self.shapes.get(statement.symbol)
        return lambda e: broadcast(*(self.shapes.get(s, ()) for s in e.free_symbols)) == whole

    def _worth_evaluating_in_place(self, expr, statement) -> bool:
        worth = WORTH_IT_AGAIN if statement.computed_again else WORTH_IT
        if self.options.fused_multiply_add and times_sum(expr, self.shapes.keys() - self.inlined):
            return False  # one kernel and a scale, as written: fewer passes than a chain
        return self.options.reuse and not expr.has(sp.Piecewise, sp.Heaviside) and \
            full_steps(expr, self._full(statement)) >= worth


def _last_of_run(statements, i: int) -> str:
    """The last name of the run of statements computed again that starts at i (what they compute again)."""
    while i + 1 < len(statements) and statements[i + 1].computed_again:
        i += 1
    return statements[i].name


def _one_array_each(step: str, rest):
    """x *= c·a as x *= a, then x *= c: no array for c·a."""
    if step == "*" and rest.is_Mul and all(f.is_Symbol or f.is_number for f in rest.args):
        arrays = [f for f in rest.args if f.is_Symbol]
        numbers = sp.Mul(*(f for f in rest.args if f.is_number))
        return [("*", a) for a in arrays] + ([("*", numbers)] if numbers != 1 else [])
    return [(step, rest)]


# -- a long expression, evaluated in place ------------------------------------------------------------------------
def full_steps(expr: sp.Expr, full) -> int:
    """How many arrays of the whole shape the expression makes as written (`full(e)`: e has the whole shape)."""
    return sum(1 for e in sp.preorder_traversal(expr) if _compound(e) and full(e))


def _compound(e) -> bool:
    return isinstance(e, sp.Expr) and not (e.is_Symbol or e.is_number)


def evaluate_in_place(layout: _Layout, buf: str, expr: sp.Expr, full, of: str) -> list[Step]:
    """Steps that leave `expr` in a new array called `buf`: one array for the result, and one more for each part
    that is itself a chain, where NumPy and eager torch make an array for every operation (z·φ(z) + Φ(z), written
    with erf, makes eight):

        buf = f0**2            # the deepest chain starts the array
        buf *= -1/2
        buf = np.exp(buf, out=buf)
        buf *= tmp4
        buf_part = erf(tmp4)   # a second chain: one more array, freed once added
        buf_part *= 1/2
        buf += buf_part
    """
    def into(name: str, e: sp.Expr) -> list[Step]:
        if not (_compound(e) and full(e)):
            return [Step("assign", name, of, expr=e)]
        if e.is_Add or e.is_Mul:
            return chain(name, e)
        if e.is_Function and len(e.args) == 1 and _compound(e.args[0]):
            steps = into(name, e.args[0])
            call = layout.in_place_call(e)
            if call:
                return steps + [Step("apply", name, of, function=call[0], more=call[1])]
            return steps + [Step("assign", name, of, expr=e.func(sp.Symbol(name, real=True)))]
        if e.is_Pow and e.exp == 2 and full_steps(e.base, full) >= 2:
            return into(name, e.base) + [Step("apply", name, of, function="square")]
        return [Step("assign", name, of, expr=e)]

    def chain(name: str, e: sp.Expr) -> list[Step]:
        operator = "+" if e.is_Add else "*"
        chains = [a for a in e.args if _compound(a) and full(a)]
        if not chains:
            return [Step("assign", name, of, expr=e)]
        first = max(chains, key=lambda a: full_steps(a, full))  # the first of the longest
        steps = into(name, first)
        rest = [a for a in e.args if a is not first]
        small = [a for a in rest if not (_compound(a) or a.is_Symbol) or not full(a)]
        for arg in (a for a in rest if not any(a is s for s in small)):
            if full_steps(arg, full) >= 2:
                part = f"{name}_part"
                added = Step("update", name, of, operator=operator, expr=sp.Symbol(part, real=True))
                steps += into(part, arg) + [added, Step("free", of=of, names=(part,))]
            else:
                steps.append(Step("update", name, of, operator=operator, expr=arg))
        if small:
            steps.append(Step("update", name, of, operator=operator, expr=e.func(*small)))
        return steps

    return into(buf, expr)
