"""sum: Σ over axes. `reduce_sum` builds it: it pulls factors that are constant along the summed axes out of the sum and
reuses an existing sum of the rest, which is how the max of a log-sum-exp drops out, and how Σ_k t_k = 1 and
Σ_e (x − μ)_e = 0 are found. Its adjoint broadcasts the cotangent back over the summed axes. NumPy and torch compute
the sum of a product of whole arrays without an array of the product (one einsum; a dot product)."""

from __future__ import annotations

import sympy as sp

from ..declare.tensor import SymbolicTensor, as_value, axis_of, traced_graph
from ..declare.trace import running
from ..graph import Graph, Value
from ..notes import define
from ..shapes import dims_at, size
from ..simplify import EXPAND_TERMS, terms_when_expanded, tidy
from .primitive import primitive, reduction
from .registry import TorchNames

SUMS_TO_ONE = "sums to one"  # a note that cross-entropy defines: targets that are distributions
SUMS_TO_ZERO = define(
    "sums to zero", "Σ_e {0}_e = 0: {0} is centred on its mean over the last axis",
    r"$\sum_e ({0})_{{e}} = 0$ over the last axis: ${0}$ is centred on its mean there. This is what makes layer "
    r"norm's backward pass compact: $\bar{{x}} = \sigma^{{-1}} \odot (\bar{{\hat{{x}}}} - "
    r"\operatorname{{mean}}(\bar{{\hat{{x}}}}) - \hat{{x}} \odot \operatorname{{mean}}(\bar{{\hat{{x}}}} \odot "
    r"\hat{{x}}))$, with $\tilde{{x}} = x - \mu$, $\sigma^{{-1}} = 1/\sqrt{{\sigma^{{2}} + \epsilon}}$ and "
    r"$\hat{{x}} = \tilde{{x}} \odot \sigma^{{-1}}$: the backward pass reads $\tilde{{x}}$ as "
    r"$\hat{{x}} / \sigma^{{-1}}$, so that it keeps $\hat{{x}}$ alone.")


def reduce_sum(graph: Graph, value: Value, out_shape: tuple, stem: str = "s", whole: bool = False) -> Value:
    """Σ of `value` over the axes that `out_shape` drops (leading) or keeps as 1.

    `out_shape` aligns with value.shape on the right, as in NumPy broadcasting. `whole`: `stem` names the whole
    result (a cotangent: dz is ∂L/∂z), so a sum that leaves an array outside it (σ⁻¹·Σ δx̂) is a part of it,
    named sum_<stem>.
    """
    ndim = len(value.shape)
    dropped = set(range(ndim - len(out_shape)))
    kept = {a for a in range(ndim) if a not in dropped and out_shape[a - len(dropped)] == 1 and value.shape[a] != 1}
    reduced = dropped | kept
    if not reduced:
        return Value(value.expr, out_shape)

    def constant_along(expr) -> bool:
        shape = graph.shape_of(expr)
        return len(shape) <= len(out_shape) and all(dims_at(shape, a, ndim) in (None, 1) for a in reduced)

    def sum_of(term: sp.Expr, dry_run: bool = False):
        """Σ term; None if dry_run and it would need a new sum tensor.

        Factors constant along the summed axes go outside, so that equal sums are found
        equal. A sum over leading axes only (a bias gradient) keeps them inside, so that
        it stays Σ_n dz, the column sum of a named cotangent.
        """
        # A dry run sees the terms of an expanded sum: products already, with nothing to factor.
        factors = sp.Mul.make_args(term if dry_run else sp.factor_terms(term))
        if not dry_run and not kept and not constant_along(term):
            factors = (term,)
        outside = [f for f in factors if constant_along(f)]
        inside = sp.Mul(*(f for f in factors if not constant_along(f)))
        inside_shape = graph.shape_of(inside)
        present = {a for a in reduced if dims_at(inside_shape, a, ndim) not in (None, 1)}
        count = size([value.shape[a] for a in reduced - present])  # Σ over an axis the term lacks
        offset = ndim - len(inside_shape)
        if not present:
            ones = [a - offset for a in dropped if a >= offset]  # leading axes of one that out_shape drops
            if ones:  # a reshape that drops them (an RNN's (1, N, h) state read as (N, h))
                attrs = dict(operands=(Value(inside, inside_shape),), split=inside_shape,
                             perm=tuple(range(len(inside_shape))))
                dropped_shape = tuple(d for a, d in enumerate(inside_shape) if a not in ones)
                if dry_run and not graph.has(dropped_shape, "rearrange", **attrs):
                    return None
                inside = graph.interned(stem, dropped_shape, "rearrange", **attrs).expr
            return sp.Mul(count, *outside, inside)
        axes = tuple(sorted({a - offset for a in present} | {a - offset for a in dropped if a >= offset}))
        summed = _sum_to_one(graph, inside, axes)
        if summed is None:
            result_shape = tuple(1 if a + offset in kept else d
                                 for a, d in enumerate(inside_shape) if a + offset not in dropped)
            attrs = dict(operands=(Value(inside, inside_shape),), axes=axes)
            twin = _twin(graph, result_shape, attrs)
            if dry_run and not graph.has(result_shape, "sum", **attrs) and twin is None:
                return None
            partial = whole and any(not factor.is_number for factor in outside)
            name = f"sum_{stem}" if partial else stem
            summed = graph.interned(name, result_shape, "rearrange", operands=(twin,), split=twin.shape,
                                    perm=tuple(range(len(twin.shape)))).expr if twin is not None else \
                graph.interned(name, result_shape, "sum", **attrs).expr
        return sp.Mul(count, *outside, summed)

    # Σ(a + b) = Σa + Σb when every part is known (a count, Σ_k t_k = 1, or a sum already made):
    # this is how ∂L/∂max of a log-sum-exp cancels to 0. Otherwise one sum of the whole.
    if terms_when_expanded(value.expr) > EXPAND_TERMS:
        return Value(sum_of(value.expr), out_shape)
    terms = sp.Add.make_args(sp.expand(value.expr, power_exp=False, power_base=False, log=False))
    parts = [sum_of(term, dry_run=True) for term in terms]
    if all(part is not None for part in parts):
        return Value(tidy(sp.Add(*parts)), out_shape)
    varying = sp.Add(*(term for term in terms if not constant_along(term)))
    if varying.is_Add and len(terms) > len(varying.args):  # Σ(x − Σx/E), x a sum of arrays (a residual), is 0
        whole = sum_of(sp.factor_terms(varying), dry_run=True)  # when Σx is made already
        if whole is not None:
            return Value(tidy(sp.Add(whole, *(sum_of(t) for t in terms if constant_along(t)))), out_shape)
    known = [part for part in parts if part is not None]
    if any(part == 0 for part in known):  # a part that sums to 0 drops out; the rest is one new sum
        rest = sp.Add(*(term for term, part in zip(terms, parts, strict=True) if part is None))
        return Value(tidy(sp.Add(*known, sum_of(tidy(rest)))), out_shape)
    return Value(sum_of(value.expr), out_shape)


def read_back_normed(g: Graph, centred: Value, rstd: Value, normed: Value) -> None:
    """A norm's x − μ (centred, summing to 0 along its axes), read by the derivation as x̂/σ⁻¹: the backward pass and
    the tangents keep x̂ alone, as a book writes them, and Σ x̂ = 0 along the same axes."""
    g.tensor(centred.expr).read_back_as = normed.expr / rstd.expr
    g.tensor(normed.expr).zero_sum_axis = g.tensor(centred.expr).zero_sum_axis


def _twin(graph: Graph, shape: tuple, attrs: dict) -> Value | None:
    """The same sum made already in its other shape (leading summed axes kept as 1, or dropped: a batch norm's
    Σ(δ·x̂) per channel, read as (1, C, 1, 1) by its δ and as (C, 1, 1) by its scale's gradient), where that is not
    `shape`; None where there is none."""
    axes, whole = attrs["axes"], attrs["operands"][0].shape
    kept = tuple(1 if a in axes else d for a, d in enumerate(whole))
    leading = next((a for a in range(len(whole)) if a not in axes), len(whole))
    other = kept if shape == kept[leading:] else kept[leading:] if shape == kept else None
    if other is None or other == shape or not graph.has(other, "sum", **attrs):
        return None
    return graph.interned("s", other, "sum", **attrs)


def _sum_to_one(graph: Graph, expr: sp.Expr, axes: tuple[int, ...]):
    """Σ of a tensor known to sum to 1 (or to 0) along the axes; None if not known."""
    tensor = graph.tensors.get(expr)
    if tensor is not None and tensor.simplex_axis is not None and axes == (tensor.simplex_axis,):
        graph.note(SUMS_TO_ONE, tensor.name)
        return sp.Integer(1)
    zero = tensor.zero_sum_axis if tensor is not None else None  # one axis (layer norm), or several (batch norm)
    if zero is not None and axes == (zero if isinstance(zero, tuple) else (zero,)):
        graph.note(SUMS_TO_ZERO, tensor.name)
        return sp.Integer(0)
    return None


def _vjp(graph, tensor, cotangent, needed):
    if needed[0]:  # broadcast back over the summed axes (sums drop leading axes only, or keep them as 1)
        yield tensor.operands[0], Value(cotangent.expr, tensor.operands[0].shape)


def _jvp(graph, tensor, tangents):
    if tangents[0] is None:
        return None
    return reduce_sum(graph, tangents[0], tensor.shape, stem=tensor.name + "_dot", whole=True)


# -- spellings: the sum of a product of whole arrays without an array of the product, where the backend can --------
def _of_product(product_sum):
    """A backend's spelling of a sum: of a product of two or more whole arrays (a loss; Σ_k a·da) by
    `product_sum(printer, factors, whole, ndim, axes, keep)` where that gives one, else a plain sum."""
    plain = reduction(_numpy_sum if product_sum is _numpy_product_sum else _torch_sum)

    def spell(printer, statement, texts):
        text = _product_text(printer, statement, product_sum)
        return text if text is not None else plain(printer, statement, texts)

    return spell


def _product_text(printer, s, product_sum):
    operand, whole = s.operands[0], s.tensor.operands[0].shape
    keep = len(s.shape) == len(whole)
    if not (keep or len(s.shape) == len(whole) - len(s.tensor.axes)) or not operand.is_Mul or \
            any(s.broadcast_operands):
        return None
    number, factors = operand.as_coeff_mul()
    shapes = [printer.shape_of(f) for f in factors]
    if sum(shape == whole for shape in shapes) < 2 or not all(f.free_symbols for f in factors) or \
            any(f.has(sp.Heaviside, sp.Piecewise) for f in factors):
        return None
    text = product_sum(printer, factors, [shape == whole for shape in shapes], len(whole), s.tensor.axes, keep)
    if text is None:
        return None
    return text if number == 1 else f"-{text}" if number == -1 else f"{printer.doprint(number)}*{text}"


def _numpy_product_sum(printer, factors, whole, ndim, axes, keep):
    # one einsum: NumPy multiplies every factor in one pass, with no array for the product (and is 4x faster than
    # np.sum(a*b, axis=3) on attention's probabilities)
    sums = [k for k, f in enumerate(factors) if f.is_Add and whole[k] and len(f.args) <= 3]
    if sums:  # Σ a·b·(c − d) as Σ a·b·c − Σ a·b·d: no array for c − d either
        k, parts = sums[0], []
        for term in factors[sums[0]].args:
            number, rest = term.as_coeff_Mul()
            # a term that is a number drops out: einsum would take it as an int64 operand, and compute in float64
            others = [*factors[:k], *([] if rest == 1 else [rest]), *factors[k + 1:]]
            text = _numpy_product_sum(printer, others, [printer.shape_of(f) == printer.shape_of(factors[k])
                                                        for f in others], ndim, axes, keep)
            if text is None:
                return None
            parts.append(("- " if number < 0 else "+ ") + (text if abs(number) == 1 else
                                                            f"{printer.doprint(abs(number))}*{text}"))
        joined = " ".join(sorted(parts, key=lambda part: part.startswith("-")))  # the added terms first
        return f"({joined[2:] if joined.startswith('+ ') else '-' + joined[2:]})"
    if not any(whole):  # no factor spans the summed axes: einsum would sum a broadcast factor once, not per entry
        return None
    letters = "ijklmnopqrs"[:ndim]
    specs = [letters[ndim - len(printer.shape_of(f)):] for f in factors]
    out = "".join(c for a, c in enumerate(letters) if a not in axes)
    text = f"{printer._module_format('numpy.einsum')}({','.join(specs) + '->' + out!r}, " \
        f"{', '.join(printer.doprint(f) for f in factors)})"
    if keep and not out:  # every axis summed and kept: a (1, 1) parameter's gradient keeps its shape
        return printer.reshape(text, (1,) * ndim)
    if keep and out:  # the summed axes kept as 1, as np.sum(..., keepdims=True)
        index = [":" if a not in axes else "None" for a in range(ndim)]
        while index and index[0] == ":":
            index.pop(0)
        text += f"[..., {', '.join(index)}]" if len(index) < ndim else f"[{', '.join(index)}]"
    return text


def _torch_product_sum(printer, factors, whole, ndim, axes, keep):
    # the sum of all of a·b as a dot product of the two whole arrays, the smaller factors multiplied into the first: no
    # array of the product (torch's einsum of three operands is several times slower); computed values only, as dot
    # needs one dtype and an input may come in another. Along one axis, rows times columns (bmm) take twice as long as
    # torch.sum of the product: that is printed instead
    arrays = [f for f, w in zip(factors, whole, strict=True) if w]
    if len(arrays) != 2 or any(not f.free_symbols <= printer.computed() for f in factors):
        return None
    first = sp.Mul(*(f for f in factors if f is not arrays[1]))
    left, right = (printer.parenthesize_operand(e, printer.doprint(e)) for e in (first, arrays[1]))
    if len(axes) == ndim:
        dot = printer._call("torch.dot", f"{left}.reshape(-1)", f"{right}.reshape(-1)")
        return printer.reshape(dot, (1,) * ndim) if keep else dot  # kept: a (1, 1) parameter's gradient
    return None


def _axis_text(axes):
    return axes[0] if len(axes) == 1 else tuple(axes)


def _numpy_sum(printer, text, axes, keepdims):
    return f"{printer._module_format('numpy.sum')}({text}, axis={_axis_text(axes)}{', keepdims=True' * keepdims})"


def _torch_sum(printer, text, axes, keepdims):
    return printer._call("torch.sum", text, f"dim={_axis_text(axes)}", *(["keepdim=True"] if keepdims else []))


def _text_sum(printer, text, axes, keepdims):
    return f"sum({text}, axis={_axis_text(axes)}{', keepdims' if keepdims else ''})"


def _latex_sum(printer, text, axes, keepdims):
    wrapped = text if printer.atomic(text) else rf"\left({text}\right)"
    if axes == (0,) and not keepdims:
        return rf"\mathbf{{1}}^{{\top}} {wrapped}"  # the column sums: one per output unit
    if keepdims and axes == (1,):
        return rf"{wrapped} \mathbf{{1}}"  # the row sums: one per sample
    if not keepdims and set(axes) == {0, 1}:
        return rf"\mathbf{{1}}^{{\top}} {wrapped} \mathbf{{1}}"
    return rf"\sum_{{\text{{axes }} {','.join(map(str, axes))}}} {wrapped}"


def _mathml_sum(printer, text, axes, keepdims):
    axis = ",".join(map(str, axes))
    return f"<mrow><munder><mo>\u2211</mo><mtext>axis {axis}</mtext></munder><mrow>{text}</mrow></mrow>"


# -- torch's names: x.sum, torch.sum, and x.mean (a sum divided by its count) --------------------------------------
def sum_over(x, dim=None, keepdim: bool = False, *, mean: bool = False, **_) -> SymbolicTensor:
    """x.sum(dim, keepdim) (x.mean(dim, keepdim), where `mean`): over every axis, one, or several."""
    where = ".mean" if mean else ".sum"
    value = as_value(x, where)
    ndim = len(value.shape)
    dims = range(ndim) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    axes = sorted({axis_of(d, ndim, where) for d in dims})
    g = traced_graph()
    names = [symbol.name for symbol in g.tensor_symbols(value.expr)]
    stem = running().stem("sum_" + "_".join(names) if 0 < len(names) <= 2 else "sums")
    kept = tuple(1 if a in axes else d for a, d in enumerate(value.shape))
    dropped = tuple(d for a, d in enumerate(value.shape) if a not in axes)
    if not keepdim and axes == list(range(len(axes))):  # leading axes: reduce_sum drops them itself
        total = reduce_sum(g, value, dropped, stem=stem)
    else:
        total = reduce_sum(g, value, kept, stem=stem)
        if not keepdim and kept != dropped:
            total = g.apply("rearrange", (total,), stem=stem, shape=dropped, split=kept, perm=tuple(range(ndim)))
    shape = kept if keepdim else dropped
    computed = g.shape_of(total.expr)
    if len(computed) > len(shape):  # axes of size 1 summed: nothing was added, but they must go
        total = g.apply("rearrange", (Value(total.expr, computed),), stem=stem, shape=shape, split=computed,
                        perm=tuple(range(len(computed))))
    count = size([value.shape[a] for a in axes])
    return SymbolicTensor(Value(total.expr / count if mean else total.expr, shape))


def _mean(x, dim=None, keepdim: bool = False, **_) -> SymbolicTensor:
    return sum_over(x, dim, keepdim, mean=True)


primitive(
    "sum", vjp=_vjp, jvp=_jvp, stem="s", parenthesized=False, sums=True, owns_array=True, recompute=True,
    spell={"numpy": _of_product(_numpy_product_sum), "torch": _of_product(_torch_product_sum),
           "text": reduction(_text_sum), "latex": reduction(_latex_sum), "mathml": reduction(_mathml_sum)},
    torch=TorchNames(functions=("torch.sum", "torch.mean"), methods=("sum", "mean"),
                     aten=("aten.sum.dim_IntList", "aten.sum.default", "aten.mean.dim", "aten.mean.default")),
    front={"torch.sum": sum_over, "sum": sum_over, "torch.mean": _mean, "mean": _mean, "aten.sum.dim_IntList": sum_over,
           "aten.sum.default": sum_over, "aten.mean.dim": _mean, "aten.mean.default": _mean}, finite=True)
