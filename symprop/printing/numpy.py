"""The NumPy backend: SymPy's NumPyPrinter, plus symprop's functions and statements."""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..ops.einsum import contraction_form
from .statements import StatementPrinter

SINUSOID = '''
def sinusoid(length, width, dtype):
    """The sinusoidal position encoding of "Attention Is All You Need": sin and cos of position / 10000^(2i/width)."""
    position = np.arange(length, dtype=dtype)[:, None]
    rate = np.exp(np.arange(0, width, 2, dtype=dtype) * (-np.log(10000.0) / width))
    table = np.zeros((length, width), dtype=dtype)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate)
    return table
'''

SCATTER_ADD = '''
def scatter_add(values, index, rows):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (np.add.at)."""
    out = np.zeros((rows,) + values.shape[index.ndim:], dtype=values.dtype)
    np.add.at(out, index, values)
    return out
'''


class NumPyBackendPrinter(StatementPrinter, NumPyPrinter):
    backend, array_module = "numpy", "np"
    scatter_add_source, sinusoid_source = SCATTER_ADD, SINUSOID

    def product_sum(self, factors, whole, ndim, axes, keep):
        # one einsum: NumPy multiplies every factor in one pass, with no array for the product (and is 4x faster
        # than np.sum(a*b, axis=3) on attention's probabilities)
        sums = [k for k, f in enumerate(factors) if f.is_Add and whole[k] and len(f.args) <= 3]
        if sums:  # Σ a·b·(c − d) as Σ a·b·c − Σ a·b·d: no array for c − d either
            k, parts = sums[0], []
            for term in factors[sums[0]].args:
                number, rest = term.as_coeff_Mul()
                others = [*factors[:k], rest, *factors[k + 1:]]
                text = self.product_sum(others, [self._shape_of(f) == self._shape_of(factors[k]) for f in others],
                                        ndim, axes, keep)
                parts.append(("- " if number < 0 else "+ ") + (text if abs(number) == 1 else
                                                                f"{self.doprint(abs(number))}*{text}"))
            joined = " ".join(sorted(parts, key=lambda part: part.startswith("-")))  # the added terms first
            return f"({joined[2:] if joined.startswith('+ ') else '-' + joined[2:]})"
        letters = "ijklmnopqrs"[:ndim]
        specs = [letters[ndim - len(self._shape_of(f)):] for f in factors]
        out = "".join(c for a, c in enumerate(letters) if a not in axes)
        text = f"{self._module_format('numpy.einsum')}({','.join(specs) + '->' + out!r}, " \
            f"{', '.join(self.doprint(f) for f in factors)})"
        if keep and out:  # the summed axes kept as 1, as np.sum(..., keepdims=True)
            index = [":" if a not in axes else "None" for a in range(ndim)]
            while index and index[0] == ":":
                index.pop(0)
            text += f"[..., {', '.join(index)}]" if len(index) < ndim else f"[{', '.join(index)}]"
        return text

    def in_place_call(self, function, array, *more):
        return f"{self._module_format('numpy.' + function)}({', '.join((array, *more))}, out={array})"

    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    # -- SymPy's functions (the ops' own are spelled by their ops) ----------------------
    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        if at_zero == 0:  # the step as a 0/1 array of the inputs' dtype: cheaper than np.heaviside
            return self.in_dtype(f"({self._print(u)} > 0)")
        return f"{self._module_format('numpy.heaviside')}({self._print(u)}, {self._print(at_zero)})"

    def _print_Piecewise(self, expr):
        # a mask of numbers, in the arrays' dtype: np.select's ints and nan would make float64
        text = super()._print_Piecewise(expr)
        return self.in_dtype(text) if all(value.is_Number for value, _ in expr.args) else text

    def in_dtype(self, text):
        return f"{text}.astype({self.dtype_text})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"{self._module_format('numpy.sqrt')}({self._print(base)})"
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    # -- statements --------------------------------------------------------------
    def einsum(self, spec, operands, shapes=None):
        form = contraction_form(spec)
        if form is not None and form[0] == "rows" and len(shapes[form[1]]) > 2:
            # x (n, s, i) @ w.T as one (n·s, i) @ (i, o) product: NumPy's matmul would run one small
            # product per leading index, on one thread, where a single one uses BLAS's threads
            _, operand, weight, transpose = form
            lead, width = shapes[operand][:-1], shapes[operand][-1]
            out = shapes[weight][0 if transpose else 1]
            product = f"{operands[operand]}.reshape(-1, {width}) @ {operands[weight]}{'.T' if transpose else ''}"
            return f"({product}).reshape{self.dims_text((*lead, out))}"
        return super().einsum(spec, operands, shapes)

    def reduce(self, kind, text, axes, keepdims):
        fn = self._module_format("numpy.sum" if kind == "sum" else "numpy.max")
        axis = axes[0] if len(axes) == 1 else tuple(axes)
        return f"{fn}({text}, axis={axis}{', keepdims=True' if keepdims else ''})"

    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    def onehot(self, text, classes):
        return self.in_dtype(f"({text}[..., None] == {self._module_format('numpy.arange')}({classes}))")

    def pad(self, tensor, texts, shapes):
        (axis,), (before, after) = tensor.axes, tensor.bounds
        widths = ["(0, 0)"] * axis + [f"({before}, {after})"] + ["(0, 0)"] * (len(shapes[0]) - axis - 1)
        return f"{self._module_format('numpy.pad')}({texts[0]}, ({', '.join(widths)}))"

    def concat(self, tensor, texts, shapes):
        return f"{self._module_format('numpy.concatenate')}([{', '.join(texts)}], axis={tensor.axes[0]})"

    def causal_mask(self, size):
        full, inf = self._module_format("numpy.full"), self._module_format("numpy.inf")
        return f"{self._module_format('numpy.triu')}({full}(({size}, {size}), -{inf}, dtype={self.dtype_text}), 1)"

    def padding_mask(self, text):
        where = self._module_format("numpy.where")
        return self.in_dtype(f"{where}({text}[:, None, None, :], -{self._module_format('numpy.inf')}, 0)")

    def broadcast(self, text, shape):
        as_array = f"{self._module_format('numpy.asarray')}({text}, dtype={self.dtype_text})"
        return f"{self._module_format('numpy.broadcast_to')}({as_array}, {self.shape_text(shape)}).copy()"
