"""The torch backend: SymPy's TorchPrinter, plus symprop's functions and statements.

The printed code uses no autograd and runs on whatever device its tensors are on.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from .statements import StatementPrinter

SINUSOID = '''
def sinusoid(length, width, dtype, device):
    """The sinusoidal position encoding of "Attention Is All You Need": sin and cos of position / 10000^(2i/width)."""
    position = torch.arange(length, dtype=dtype, device=device)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=dtype, device=device) * (-9.210340371976184 / width))  # ln 10000
    table = torch.zeros(length, width, dtype=dtype, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table
'''

SCATTER_ADD = '''
def scatter_add(values, index, rows):
    """A table of `rows` rows: row r is the sum of the rows of values whose index is r (index_add_)."""
    row = values.shape[index.dim():]
    out = torch.zeros((rows, *row), dtype=values.dtype, device=values.device)
    return out.index_add_(0, index.reshape(-1), values.reshape(-1, *row))
'''

ONE_HOT = '''
def one_hot(index, classes, dtype):
    """1 at each index along a new last axis, 0 elsewhere, made in dtype (F.one_hot makes int64 first)."""
    out = torch.zeros((*index.shape, classes), dtype=dtype, device=index.device)
    return out.scatter_(-1, index.unsqueeze(-1), 1.0)
'''


class TorchBackendPrinter(StatementPrinter, TorchPrinter):
    backend, array_module = "torch", "torch"
    scatter_add_source, sinusoid_source = SCATTER_ADD, SINUSOID
    def __init__(self):
        super().__init__({"fully_qualified_modules": True})

    def in_place_call(self, function, array, *more):
        return self._call(f"torch.{function}_", array, *more)

    def _call(self, fn, *args):
        return f"{self._module_format(fn)}({', '.join(args)})"

    def mask(self, u, dying=False):
        # h = max(z, 0) is ≥ 0, so H(h) = sign(h): one float kernel, where torch's bool compare and
        # bool-times-float multiply take some 8x as long on CPU; into h itself when h is read for the last time
        if u in self._plan.nonnegative:
            return f"{self._print(u)}.sign_()" if dying else self._call("torch.sign", self._print(u))
        return super().mask(u)

    def _print_Heaviside(self, expr):
        u, at_zero = expr.args
        text = self._print(u)
        if at_zero == 0 and u in self._plan.nonnegative:
            return self._call("torch.sign", text)
        return self.in_dtype(f"({text} > 0)") if at_zero == 0 else self._call(
            "torch.heaviside", text, self._call("torch.full_like", text, self._print(at_zero)))

    def _print_Piecewise(self, expr):
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
        if exp.is_Integer and exp.is_negative:
            return f"(1/{self.parenthesize(base ** -exp, 60)})"
        return f"{self.parenthesize(base, 60)}**{self.parenthesize(exp, 60)}"

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    # -- statements --------------------------------------------------------------
    def reduce(self, kind, text, axes, keepdims):
        fn = "torch.sum" if kind == "sum" else "torch.amax"
        dim = axes[0] if len(axes) == 1 else tuple(axes)
        return self._call(fn, text, f"dim={dim}", *(["keepdim=True"] if keepdims else []))

    def product_sum(self, factors, whole, ndim, axes, keep):
        # a dot product of the two whole arrays (over the last axis: a row times a column), the smaller factors
        # multiplied into the first: no array of the product (torch's einsum of three operands is several times
        # slower); computed values only, as matmul needs one dtype and an input may come in another
        arrays = [f for f, w in zip(factors, whole, strict=True) if w]
        computed = {sp.Symbol(s.name, real=True) for s in self._program.statements}
        if len(arrays) != 2 or any(not f.free_symbols <= computed for f in factors):
            return None
        first = sp.Mul(*(f for f in factors if f is not arrays[1]))
        left, right = (self.parenthesize_operand(e, self.doprint(e)) for e in (first, arrays[1]))
        if len(axes) == ndim:
            return self._call("torch.dot", f"{left}.reshape(-1)", f"{right}.reshape(-1)")
        if tuple(axes) == (ndim - 1,) and keep and first.is_Symbol:  # Σ_k a·b, kept: a row times a column
            return f"({left}.unsqueeze(-2) @ {right}.unsqueeze(-1)).squeeze(-1)"
        return None

    def reshape(self, text, shape):
        return f"{text}.reshape({self.shape_text(shape)})"

    def onehot(self, text, classes):
        self.helpers["one_hot"] = ONE_HOT
        return f"one_hot({text}, {classes}, {self.dtype_text})"

    batch_transpose = ".mT"

    def permute(self, perm):
        return f".permute{tuple(perm)}"

    def pad(self, tensor, texts, shapes):
        (axis,), (before, after) = tensor.axes, tensor.bounds
        widths = [0, 0] * (len(shapes[0]) - axis - 1) + [before, after]  # torch: the last axis first
        return self._call("torch.nn.functional.pad", texts[0], str(tuple(widths)))

    def concat(self, tensor, texts, shapes):
        return self._call("torch.cat", f"[{', '.join(texts)}]", f"dim={tensor.axes[0]}")

    def causal_mask(self, size):
        full = self._call("torch.full", f"({size}, {size})", 'float("-inf")', f"dtype={self.dtype_text}",
                          f"device={self.device_text}")
        return self._call("torch.triu", full, "diagonal=1")

    @property
    def placement(self) -> str:
        return f"{self.dtype_text}, {self.device_text}"

    def padding_mask(self, text):
        where = self._call("torch.where", f"{text}[:, None, None, :]", 'float("-inf")', "0.0")
        return self.in_dtype(where)

    def broadcast(self, text, shape):
        return (f"{self._module_format('torch.as_tensor')}({text}, dtype={self.dtype_text}, device={self.device_text})"
                f".expand({self.shape_text(shape)}).clone()")
