"""The torch backend: SymPy's TorchPrinter, plus symprop's functions and statements.

The printed code uses no autograd and runs on whatever device its tensors are on.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from ..ops.registry import Helper
from ..program import times_sum
from ..shapes import batch_sized
from .statements import StatementPrinter, fold_numbers

# A comparison written as 0s and 1s of the arrays' dtype by the comparison kernel itself: a bool tensor converted
# afterwards (.to(dtype)) or multiplied into a float one takes some ten times as long on CPU.
MASK = Helper("holds", '''
def holds(compare, a, b, like):
    """Where compare(a, b) holds: 1 there and 0 elsewhere, in like's dtype and on its device."""
    if not isinstance(b, torch.Tensor):  # a bound: a's shape (the common case, and the cheap one to make)
        return compare(a, b, out=torch.empty_like(a, dtype=like.dtype))
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return compare(a, b, out=torch.empty(shape, dtype=like.dtype, device=like.device))
''')
COMPARES = {sp.StrictGreaterThan: "torch.gt", sp.GreaterThan: "torch.ge", sp.StrictLessThan: "torch.lt",
            sp.LessThan: "torch.le", sp.Equality: "torch.eq", sp.Unequality: "torch.ne"}


class TorchBackendPrinter(StatementPrinter, TorchPrinter):
    backend = "torch"
    select_by_arithmetic = False
    clamp_function = "torch.clamp"

    def __init__(self):
        super().__init__({"fully_qualified_modules": True})

    def step_line(self, name, operator, rest):
        # name += c·a, for a batch-sized array a broadcast along no axis, as one kernel: no array for c·a
        number, array = rest.as_coeff_Mul()
        shape = self._program.shapes.get(array) if array.is_Symbol else None
        if operator == "+" and abs(number) != 1 and shape and batch_sized(shape) and 1 not in shape and \
                array not in self._inline:
            return f"{name}.add_({self._print(array)}, alpha={float(number)!r})"
        # name += c·a·b as one kernel (addcmul_), and name += d + Σ cᵢ·aᵢ·bᵢ as one kernel a term: no array for
        # each product, nor for the sum (x̂ times its row's Σ, in a norm's δ; the tangents of an hvp)
        rest = fold_numbers(rest)  # √2·a as 1.414…·a: its scale is a number
        products = [t for t in sp.Add.make_args(rest) if self._product_of_arrays(t)]
        if operator == "+" and products and not rest.free_symbols & set(self._inline):
            others = rest - sp.Add(*products)
            if others == 0 and len(products) == 1:  # one kernel that reads each entry before it writes it: name may
                return f"{name}{self._added_product(products[0])}"  # be one of its arrays
            # a kernel a term: none may read name's array, which the first has changed by then
            if not {s.name for s in rest.free_symbols} & self._sharing(name):
                added = ([self._added(others)] if others != 0 else []) + [self._added_product(p) for p in products]
                return "\n    ".join(name + kernel for kernel in added)
        return super().step_line(name, operator, rest)

    def _sharing(self, name: str) -> set[str]:
        """The names that may stand for name's array in this function: those it took over, or was computed into."""
        groups = {}
        for step in self._plan.steps:
            if step.source and step.kind in ("alias", "apply", "assign"):
                merged = groups.get(step.name, {step.name}) | groups.get(step.source, {step.source})
                for member in merged:
                    groups[member] = merged
        return groups.get(name, {name})

    def _print_Mul(self, expr):
        # c·a·(b + k) as addcmul(a, a, b, value=1/k), scaled by c·k: one kernel for the sum and the product
        found = times_sum(expr, self._program.shapes.keys() - set(self._inline)) \
            if getattr(self, "_program", None) is not None else None
        if found is None:
            return super()._print_Mul(expr)
        c, a, b, k = found
        text = f"{self._module_format('torch.addcmul')}({self._print(a)}, {self._print(a)}, {self._print(b)}" \
               f"{self._scale('value', 1 / k)})"
        return text if c * k == 1 else f"{text}.mul_({float(c * k)!r})"

    def _print_Add(self, expr, order=None):
        # b + c·w·x as one kernel too (torch.addcmul): no array for the product (a norm's affine map)
        if getattr(self, "_program", None) is not None and len(expr.args) == 2 and \
                not expr.free_symbols & set(self._inline):
            for term, other in (expr.args, expr.args[::-1]):
                if other.is_Symbol and other in self._program.shapes and self._product_of_arrays(term):
                    arrays, scale = self._product_of_arrays(term)
                    return f"{self._module_format('torch.addcmul')}({self._print(other)}, {self._print(arrays[0])}, " \
                        f"{self._print(sp.Mul(*arrays[1:]))}{self._scale('value', scale)})"
        return super()._print_Add(expr, order)

    def _product_of_arrays(self, term):
        """(its arrays, its scale: a number, or one of the batch size) where term is a number times two or more
        arrays, each read as it is (not 1/s, nor h**2: those read better as written); None otherwise."""
        arrays = self._arrays(term)
        if len(arrays) < 2 or not all(f.is_Symbol for f in arrays):
            return None
        return arrays, term / sp.Mul(*arrays)

    def _added_product(self, term) -> str:
        """.addcmul_(a, b, value=c) for term c·a·b; of three arrays or more, b is the one of most axes (x̂ in σ⁻¹·Σ·x̂),
        so that the arrays multiplied first are the small ones."""
        arrays, scale = self._product_of_arrays(term)
        *small, large = sorted(arrays, key=lambda a: sum(d != 1 for d in self._program.shapes.get(a, ())))
        return f".addcmul_({self._print(sp.Mul(*small))}, {self._print(large)}{self._scale('value', scale)})"

    def _arrays(self, term) -> list:
        """The factors of a product that read arrays (not numbers, nor the batch size)."""
        return [f for f in sp.Mul.make_args(term) if f.free_symbols & self._program.shapes.keys()]

    def _added(self, term) -> str:
        arrays = self._arrays(term)
        if not arrays:
            return f".add_({self._print(term)})"
        return f".add_({self._print(sp.Mul(*arrays))}{self._scale('alpha', term / sp.Mul(*arrays))})"

    def _scale(self, keyword: str, scale) -> str:
        """The keyword argument of a scale that is not 1 (value=0.5): a number, or one of the batch size (1/N)."""
        if scale == 1:
            return ""
        return f", {keyword}={float(scale)!r}" if scale.is_number else f", {keyword}={self._print(scale)}"

    def in_place_call(self, function, array, *more):
        return self._call(f"torch.{function}_", array, *more)

    def _call(self, fn, *args):
        return f"{self._module_format(fn)}({', '.join(args)})"

    def mask(self, u, dying=False):
        # h = max(z, 0) is ≥ 0, so H(h) = sign(h): one float kernel, where torch's bool compare and
        # bool-times-float multiply take some 8x as long on CPU; into h itself when h is read for the last time
        if u in self._plan.nonnegative:
            return f"{self._print(u)}.sign_()" if dying else self._call("torch.sign", self._print(u))
        return self.number_mask(u > 0)

    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        text = self._print(u)
        if at_zero == 0 and u in self._plan.nonnegative:
            return self._call("torch.sign", text)
        if at_zero in (0, 1):
            return self.number_mask(u > 0 if at_zero == 0 else u >= 0)
        return self._call("torch.heaviside", text, self._call("torch.full_like", text, self._print(at_zero)))

    def number_mask(self, condition) -> str:
        relation = condition.reversed if isinstance(condition, sp.Rel) and condition.lhs.is_Number else condition
        if type(relation) not in COMPARES or getattr(self, "_program", None) is None:
            return super().number_mask(condition)
        return f"{self.use(MASK)}({self._module_format(COMPARES[type(relation)])}, {self._print(relation.lhs)}, " \
               f"{self._print(relation.rhs)}, {self.carrier})"

    def _print_Piecewise(self, expr):
        arithmetic = self.branchless(expr)
        if arithmetic is not None:
            return arithmetic
        # a mask of numbers, in the arrays' dtype: torch.where's ints would make int64, and its floats the default
        # dtype (0.01 rounded to float32 in a float64 module): the last value is made a tensor of the arrays' own
        if not all(value.is_Number for value, _ in expr.args) or expr.args[-1][1] != sp.true:
            return super()._print_Piecewise(expr)
        text = f"{self.carrier}.new_tensor({self._print(expr.args[-1][0])})"
        for value, condition in reversed(expr.args[:-1]):
            text = self._call("torch.where", self._print(condition), self._print(value), text)
        return text

    def in_dtype(self, text):
        return f"{text}.to({self.dtype_text})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return self._call("torch.sqrt", self._print(base))
        if exp == -sp.S.Half:  # a layer norm's 1/√var: one kernel, where ** pays for a general power
            return self._call("torch.rsqrt", self._print(base))
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    # -- statements --------------------------------------------------------------
    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    @property
    def placement(self) -> str:
        return f"{self.dtype_text}, {self.device_text}"

    def broadcast(self, text, shape, keep_dtype=False):
        if keep_dtype:
            return f"{text if text.isidentifier() else f'({text})'}.expand({self.shape_text(shape)}).clone()"
        return (f"{self._module_format('torch.as_tensor')}({text}, dtype={self.dtype_text}, device={self.device_text})"
                f".expand({self.shape_text(shape)}).clone()")
