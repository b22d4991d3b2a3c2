"""einsum: a contraction of tensors over shared indices, by its index spec ("ni,oi->no"): torch.einsum, and @ in every
form (torch.matmul, mm, bmm). Its adjoint follows from the spec: an operand's cotangent is the contraction of the
result's cotangent with the other operands. Each backend prints the contractions that are one matrix product as that
product (x @ w.T, q @ k.mT), and a book as A Bᵀ."""

from __future__ import annotations

import math
from dataclasses import replace

import sympy as sp

from ..declare.tensor import SymbolicTensor, as_value, shape_text, traced_graph
from ..declare.trace import fail, running
from ..graph import Value
from ..graph.ir import Tensor
from ..plan.uses import Uses, unused
from ..program import Program, Statement, inlinable
from ..shapes import batch_sized
from .primitive import primitive, shapes_of
from .registry import Call, TorchNames, call, layout_rule, lookup, plan_rule

LETTERS = "abcdefghijklmnopqrstuvwxyz"


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


def permuted_matmul(spec: str):
    """A two-operand einsum that is a batched matrix product once its axes are permuted, or None:
    (left, right, left_axes, right_axes, output_axes) such that it computes
    (left.transpose(left_axes) @ right.transpose(right_axes)).transpose(output_axes). Each operand has one free axis
    and shares one summed axis with the other; every other axis is a batch axis of both and of the output, in any order
    (attention's q·k over heads, read off a (batch, position, head, width) view)."""
    inputs, out = spec.split("->")
    parts = inputs.split(",")
    if len(parts) != 2:
        return None
    a, b = parts
    batch = [c for c in out if c in a and c in b]
    summed, free_a, free_b = set(a) & set(b) - set(out), set(a) - set(b), set(b) - set(a)
    if not batch or len(summed) != 1 or len(free_a) != 1 or len(free_b) != 1 or len(out) != len(batch) + 2 \
            or len(a) != len(batch) + 2 or len(b) != len(batch) + 2:
        return None
    (k,), (m,), (n,) = summed, free_a, free_b
    made = "".join(batch) + m + n  # the product's letters
    return (0, 1, tuple(a.index(c) for c in (*batch, m, k)), tuple(b.index(c) for c in (*batch, k, n)),
            tuple(made.index(c) for c in out))


def book_product(form) -> tuple[int, int, bool, bool]:
    """A contraction form as a book writes it, A B with either side transposed: (left, right,
    transpose_left, transpose_right). A flattened product is leftᵀ right over its (sample, position) rows."""
    if form[0] == "matmul":
        return form[1], form[2], form[3], form[4]
    if form[0] == "rows":
        return form[1], form[2], False, form[3]
    return form[1], form[2], True, False


# -- the primitive -------------------------------------------------------------------------------------------------
def _shape(operands, spec: str):
    inputs, output = spec.split("->")
    sizes: dict[str, object] = {}
    for letters, operand in zip(inputs.split(","), operands, strict=True):
        for letter, dim in zip(letters, operand.shape, strict=True):
            if sizes.setdefault(letter, dim) != dim:
                raise ValueError(f"einsum {spec}: axis {letter} is {sizes[letter]} and {dim}")
    return tuple(sizes[letter] for letter in output)


def _vjp(graph, tensor, cotangent, needed):
    """The cotangent of an operand is the einsum of the output's cotangent with the other operands, its index spec
    read off the forward spec."""
    inputs, output = tensor.spec.split("->")
    letters = inputs.split(",")
    for j, operand in enumerate(tensor.operands):
        if not needed[j]:
            continue
        others = [k for k in range(len(letters)) if k != j]
        spec = ",".join([output] + [letters[k] for k in others]) + "->" + letters[j]
        missing = set(letters[j]) - set(output) - {c for k in others for c in letters[k]}
        if missing:
            raise NotImplementedError(f"einsum {tensor.spec}: index {missing} sums inside one operand")
        stem = "d" + graph.name_of(operand.expr, f"{tensor.name}_{j}")
        stored = operand.expr in graph.tensors and graph.tensors[operand.expr].op == "map"
        if stored or (operand.expr in graph.labels and graph.uses(operand.expr) > 1):
            stem += f"_{tensor.name}"  # one part of the cotangent of a value read twice: d<name> is the sum's
        yield operand, graph.apply("einsum", (cotangent, *(tensor.operands[k] for k in others)), stem=stem, spec=spec)


def _jvp(graph, tensor, tangents):
    """Linear in each operand: the sum of the contractions with one operand's tangent in its place."""
    terms = [graph.again(tensor, (*tensor.operands[:j], moved, *tensor.operands[j + 1:]),
                         stem=f"{tensor.name}_dot{j}" if sum(t is not None for t in tangents) > 1 else "").expr
             for j, moved in enumerate(tangents) if moved is not None]
    return Value(sp.Add(*terms), tensor.shape) if terms else None


def _code(module: str, batch_transpose: str, permute: str = ".transpose", options: str = "",
          right_first: bool = False):
    """NumPy's and torch's syntax (and the docstrings'): a matrix product with @ (its operands' axes permuted where
    that makes one), else module.einsum. `right_first`: a weight's gradient Aᵀ B as (Bᵀ A)ᵀ, a transposed view of
    the product (OpenBLAS: 83 µs where Aᵀ B takes 123, for the (32, 256)ᵀ (32, 784) of an MLP at batch 32)."""

    def transposed(text: str, axes: tuple) -> str:
        n = len(axes)
        if axes == tuple(range(n)):
            return text
        if axes == (*range(n - 2), n - 1, n - 2):
            return text + batch_transpose
        return f"{text}{permute}{axes}"

    def spell(printer, statement, texts):
        spec, shapes = statement.tensor.spec, shapes_of(statement)
        form = contraction_form(spec)
        if form is None:
            permuted = permuted_matmul(spec)
            if permuted is None:
                return f"{module}einsum({spec!r}, {', '.join(texts)}{options})"
            left, right, *axes = permuted
            left_text, right_text, out_axes = (transposed(texts[left], axes[0]), transposed(texts[right], axes[1]),
                                               axes[2])
            product = f"{left_text} @ {right_text}"
            return f"({product}){permute}{out_axes}" if out_axes != tuple(range(len(out_axes))) else product
        if form[0] == "matmul":
            _, left, right, t_left, t_right, batched = form
            swap = batch_transpose if batched else ".T"
            if right_first and t_left and not t_right and not batched:
                return f"({texts[right]}.T @ {texts[left]}).T"
            return f"{texts[left]}{swap if t_left else ''} @ {texts[right]}{swap if t_right else ''}"
        if form[0] == "rows":
            _, operand, weight, transpose = form
            return f"{texts[operand]} @ {texts[weight]}{'.T' if transpose else ''}"
        _, left, right = form
        rows, columns = shapes[left][-1], shapes[right][-1]
        if right_first:
            return f"({texts[right]}.reshape(-1, {columns}).T @ {texts[left]}.reshape(-1, {rows})).T"
        return f"{texts[left]}.reshape(-1, {rows}).T @ {texts[right]}.reshape(-1, {columns})"

    return spell


def _numpy(printer, statement, texts):
    form, shapes = contraction_form(statement.tensor.spec), shapes_of(statement)
    if form is not None and form[0] == "rows" and len(shapes[form[1]]) > 2:
        # x (n, s, i) @ w.T as one (n·s, i) @ (i, o) product: NumPy's matmul would run one small product per leading
        # index, on one thread, where a single one uses BLAS's threads
        _, operand, weight, transpose = form
        lead, width = shapes[operand][:-1], shapes[operand][-1]
        out = shapes[weight][0 if transpose else 1]
        product = f"{texts[operand]}.reshape(-1, {width}) @ {texts[weight]}{'.T' if transpose else ''}"
        return f"({product}).reshape{printer.dims_text((*lead, out))}"
    if form is None and permuted_matmul(statement.tensor.spec) is None:
        blas = _as_matrices(printer, statement.tensor.spec, shapes, texts)
        if blas is not None:
            return blas
    # numpy 1.x has no .mT; optimize=True: any other contraction through tensordot's BLAS product
    return _code("np.", ".swapaxes(-1, -2)", options=", optimize=True", right_first=True)(printer, statement, texts)


def _as_matrices(printer, spec: str, shapes, texts) -> str | None:
    """A contraction of two operands that share no batch axis, as one BLAS product of each operand's axes permuted and
    flattened into a matrix (a convolution's im2col), or None. Two forms:
    - out = (rows of one operand, then the other's): one product of two matrices, the operand with more rows on the
      left, as BLAS runs it fastest: a kernel's gradient Σ_{n,x,y} δ P;
    - out = (leading free axes of one operand R, the other's free axes M, R's other free axes S): the product
      L(m, k) @ R(p, k, s), matmul broadcasting L over R's leading axes (its axes then permuted to out's, a view): a
      convolution, Σ_{c,i,j} W P per sample, and its transpose (NumPy's einsum and tensordot copy the windows into a
      layout whose product runs some ten times slower)."""
    inputs, out = spec.split("->")
    parts = inputs.split(",")
    if len(parts) != 2:
        return None
    sizes = {c: d for letters, shape in zip(parts, shapes, strict=True) for c, d in zip(letters, shape, strict=True)}
    summed = [c for c in parts[0] if c in parts[1] and c not in out]
    free = [[c for c in letters if c not in summed] for letters in parts]
    if not summed or not all(free) or set(free[0]) & set(free[1]) or len(set(out)) != len(out):
        return None

    def size(letters) -> str:
        dims = [sizes[c] for c in letters]
        return "-1" if any(batch_sized((d,)) for d in dims) else printer.doprint(sp.Mul(*dims))

    def matrix(j: int, order: list, groups: list) -> str:
        """Operand j with its axes in `order`, flattened into `groups` (a list of letter groups)."""
        letters = parts[j]
        if len(groups) == 2 and letters == "".join(groups[1]) + "".join(groups[0]):  # a matrix's transpose: a view
            return f"{texts[j]}.reshape({size(groups[1])}, {size(groups[0])}).T"
        perm = tuple(letters.index(c) for c in order)
        text = texts[j] if perm == tuple(range(len(perm))) else f"{texts[j]}.transpose{perm}"
        return f"{text}.reshape({', '.join(size(g) for g in groups)})"

    for r in (0, 1):  # out = P + M + S: R's leading free axes, L's free axes, R's other free axes
        lead = 0
        while lead < len(out) and out[lead] in free[r]:
            lead += 1
        prefix, left = out[:lead], 1 - r
        rest = [c for c in free[r] if c not in prefix]
        if prefix and rest:
            made = prefix + "".join(free[left]) + "".join(rest)  # the product's axes, a view away from out's
            product = f"{matrix(left, free[left] + summed, [free[left], summed])} @ " \
                      f"{matrix(r, list(prefix) + summed + rest, [prefix, summed, rest])}"
            perm = tuple(made.index(c) for c in out)
            view = "" if perm == tuple(range(len(perm))) else f".transpose{perm}"
            return f"({product}).reshape{printer.dims_text(tuple(sizes[c] for c in made))}{view}"
    for first in (0, 1):  # out = (one operand's free axes, the other's)
        second = 1 - first
        if out != "".join(free[first]) + "".join(free[second]):
            continue
        rows = [matrix(j, free[j] + summed, [free[j], summed]) for j in (first, second)]
        product = f"{rows[0]} @ {rows[1]}.T"
        if _count(sizes, free[second]) > _count(sizes, free[first]):
            product = f"({rows[1]} @ {rows[0]}.T).T"
        return f"({product}).reshape{printer.dims_text(tuple(sizes[c] for c in out))}"
    return None


def _count(sizes: dict, letters) -> float:
    """How many entries the axes hold (the batch's counted as large)."""
    return math.prod(d if isinstance(d, int) else 1e9 for d in (sizes[c] for c in letters))


def _book(general, product):
    """Matrix products as books write them: X Wᵀ; per sample and head, Q Kᵀ; over samples and positions, δᵀ X (its rows
    are (sample, position) pairs, summed over both). `product(left, right)` writes two factors side by side, and
    `general(printer, spec, texts)` any other contraction."""

    def spell(printer, statement, texts):
        form = contraction_form(statement.tensor.spec)
        if form is None:
            return general(printer, statement.tensor.spec, texts)
        left, right, t_left, t_right = book_product(form)
        return product(printer.transposed(texts[left], t_left), printer.transposed(texts[right], t_right))

    return spell


def _indexed_sum(printer, spec: str, texts) -> str:
    """Any other contraction in index notation: [Σ_{c,i,j} P_{n,c,x,y,i,j} (W)_{o,c,i,j}]_{n,o,x,y}, the tensor whose
    (n, o, x, y) entry is that sum."""
    inputs, out = spec.split("->")
    summed = [c for c in dict.fromkeys(inputs.replace(",", "")) if c not in out]
    factors = " ".join(printer.indexed(text, letters) for text, letters in zip(texts, inputs.split(","), strict=True))
    return printer.index_sum(summed, factors, out)


_latex = _book(_indexed_sum, lambda left, right: f"{left} {right}")
_mathml = _book(_indexed_sum, lambda left, right: f"<mrow>{left}{right}</mrow>")


# -- torch's names: @, matmul, mm, bmm, einsum ----------------------------------------------------------------------
def matmul(a, b) -> SymbolicTensor:
    """torch.matmul as one contraction: a matrix product, batched over leading axes of equal size."""
    a, b = as_value(a, "@"), as_value(b, "@")
    if not a.shape or not b.shape:
        raise fail("@ needs tensors of at least one dimension; use * for a number")
    if a.shape[-1] != (b.shape[0] if len(b.shape) == 1 else b.shape[-2]):
        raise fail(f"@: shapes {shape_text(a.shape)} and {shape_text(b.shape)} do not multiply "
                   f"({a.shape[-1]} columns against {b.shape[0] if len(b.shape) == 1 else b.shape[-2]} rows)")
    a_spec = LETTERS[:len(a.shape)]
    k = a_spec[-1]
    if len(b.shape) == 1:
        b_spec, out = k, a_spec[:-1]
    else:
        batch = b.shape[:-2]
        if batch and (len(a.shape) != len(b.shape) or a.shape[:-2] != batch):
            return _broadcast_matmul(a, b)
        b_spec, out = a_spec[:len(batch)] + k + "z", a_spec[:-1] + "z"
    a_spec, a_value = _letters(a, a_spec)
    b_spec, b_value = _letters(b, b_spec)
    return SymbolicTensor(traced_graph().apply("einsum", (a_value, b_value), stem=running().stem("mm"),
                                               spec=f"{a_spec},{b_spec}->{out}"))


def _broadcast_matmul(a: Value, b: Value) -> SymbolicTensor:
    """a @ b whose batch axes differ, broadcast as torch broadcasts them (aligned from the right, an axis of size 1
    or a missing one repeated): a graph's adjacency (n, n) times a batch of node features (N, n, f). An axis of size
    1 that broadcasts is dropped, and its letter with it."""
    a_batch, b_batch = a.shape[:-2], b.shape[:-2] if len(b.shape) > 1 else ()
    depth = max(len(a_batch), len(b_batch))
    padded = [(None,) * (depth - len(x)) + tuple(x) for x in (a_batch, b_batch)]
    sizes = []
    for x, y in zip(*padded, strict=True):
        if x is not None and y is not None and x != y and 1 not in (x, y):
            raise fail(f"@: the batch axes of {shape_text(a.shape)} and {shape_text(b.shape)} do not broadcast")
        sizes.append(y if x in (None, 1) else x)
    specs, values = [], []
    for value, batch, matrix in ((a, padded[0], "wx" if len(a.shape) > 1 else "x"),
                                 (b, padded[1], "xz" if len(b.shape) > 1 else "x")):
        tensor, letters = SymbolicTensor(value), ""
        for j in reversed(range(depth)):  # from the last batch axis, so that squeezing keeps the axes before
            axis = j - (depth - len(value.shape[:-len(matrix)]))
            if batch[j] is None:
                continue
            if batch[j] == 1 and sizes[j] != 1:
                tensor = tensor.squeeze(axis)
            else:
                letters = LETTERS[j] + letters
        specs.append(letters + matrix)
        values.append(tensor.value)
    out = LETTERS[:depth] + ("w" if len(a.shape) > 1 else "") + ("z" if len(b.shape) > 1 else "")
    return SymbolicTensor(traced_graph().apply("einsum", tuple(values), stem=running().stem("mm"),
                                               spec=f"{specs[0]},{specs[1]}->{out}"))


def _letters(value, letters: str):
    """(letters, value) for an einsum operand; a transposed tensor is read as itself with its letters moved (x @ w.T
    is one product with w, as torch's linear computes it)."""
    tensor = traced_graph().tensors.get(value.expr)
    if tensor is not None and tensor.op == "rearrange" and tuple(tensor.split) == tuple(tensor.operands[0].shape) \
            and tuple(tensor.split[a] for a in tensor.perm) == tuple(tensor.shape):
        moved = [""] * len(letters)
        for position, axis in enumerate(tensor.perm):
            moved[axis] = letters[position]
        return "".join(moved), tensor.operands[0]
    return letters, value


def einsum(equation, *operands) -> SymbolicTensor:
    """torch.einsum(equation, *operands) (or a list of operands): a contraction over the letters the operands share,
    each summed letter in two operands or more; the output's letters after ->, or, without ->, the letters that occur
    once, in alphabetical order (as torch reads it)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise fail(f"einsum: the equation must be a string, got {type(equation).__name__}")
    spec = equation.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    parts = inputs.split(",")
    letters = "".join(parts)
    if "." in spec or not all(c.isalpha() and c.isascii() for c in letters + output):
        raise fail(f"einsum {equation!r}: write each axis as a letter (symprop has no ... in einsum)")
    if not arrow:
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(parts) != len(operands):
        raise fail(f"einsum {equation!r}: {len(parts)} operands in the equation, {len(operands)} given")
    values = [as_value(x, "einsum") for x in operands]
    for part, value in zip(parts, values, strict=True):
        if len(part) != len(value.shape):
            raise fail(f"einsum {equation!r}: {part} names {len(part)} axes of a tensor of shape "
                       f"{shape_text(value.shape)}")
        if len(set(part)) != len(part):
            raise fail(f"einsum {equation!r}: a letter twice in one operand (a diagonal) is not supported")
    if len(set(output)) != len(output) or set(output) - set(letters):
        raise fail(f"einsum {equation!r}: each output letter must occur once, and in an operand")
    for c in set(letters) - set(output):
        if sum(c in part for part in parts) < 2:
            raise fail(f"einsum {equation!r}: {c} is summed inside one operand; sum it with .sum first")
    try:
        return SymbolicTensor(traced_graph().apply("einsum", values, stem=running().stem("mm"),
                                                   spec=",".join(parts) + "->" + output))
    except ValueError:
        shapes = ", ".join(shape_text(v.shape) for v in values)
        raise fail(f"einsum {equation!r}: the shapes {shapes} disagree on an axis's size") from None


def _batch_rows(tensor) -> str | None:
    """'kept' where the batch is the first axis of the result and of each operand that has it, 'summed' where it is
    summed away (Σ over samples: a kernel's gradient), None otherwise (see Primitive.batch_rows)."""
    inputs, out = tensor.spec.split("->")
    parts = inputs.split(",")
    letters = {c for letters, value in zip(parts, tensor.operands, strict=True)
               for c, d in zip(letters, value.shape, strict=True) if batch_sized((d,))}
    if len(letters) != 1:
        return None
    (batch,) = letters
    if any(batch in letters and letters[0] != batch for letters in parts):
        return None
    if batch not in out:
        return "summed"
    return "kept" if out[0] == batch else None


def _rmatmul(b, a) -> SymbolicTensor:
    return matmul(a, b)


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> SymbolicTensor:
    """torch.addmm: beta·input + alpha·(mat1 @ mat2) (Hugging Face GPT-2's Conv1D: a linear layer as addmm)."""
    product = matmul(mat1, mat2)
    return (input if beta == 1 else beta * input) + (product if alpha == 1 else alpha * product)


primitive(
    "einsum", shape=lambda operands, spec: _shape(operands, spec), vjp=_vjp, jvp=_jvp, stem="mm", product=True,
    owns_array=True, recompute=True, batch_rows=_batch_rows,
    spell={"numpy": _numpy, "torch": _code("torch.", ".mT", ".permute"), "text": _code("", ".swapaxes(-1, -2)"),
           "latex": _latex, "mathml": _mathml},
    torch=TorchNames(functions=("torch.matmul", "torch.mm", "torch.bmm", "torch.einsum", "torch.addmm"),
                     methods=("matmul", "mm", "bmm", "__matmul__", "__rmatmul__", "addmm"),
                     aten=("aten.mm.default", "aten.bmm.default", "aten.matmul.default", "aten.einsum.default",
                           "aten.addmm.default")),
    front={**dict.fromkeys(("torch.matmul", "torch.mm", "torch.bmm", "matmul", "mm", "bmm", "__matmul__",
                            "aten.matmul.default", "aten.mm.default", "aten.bmm.default"), matmul),
           "torch.einsum": einsum, "__rmatmul__": _rmatmul, "torch.addmm": addmm, "addmm": addmm,
           "aten.addmm.default": addmm,
           "aten.einsum.default": lambda equation, tensors, path=None: einsum(equation, *tensors)}, finite=True)


# -- torch: operands in the product's axis order, copied once ---------------------------------------------------------
@layout_rule
def operands_in_product_order(uses: Uses, shapes: dict, backend: str) -> Uses:
    """torch.matmul copies an operand whose batch axes it cannot merge into one (attention's q, k and v: views of a
    (batch, position, head, width) array, read by (batch, head)), at every product that reads it, by a slow path
    (some 20 µs at a GPT's (32, 2, 16, 16)). Such an operand is copied once instead, into the product's order of axes
    (its batch axes, then its two others as they are), and every product reads the copy, transposed where it needs."""
    if backend != "torch":
        return uses
    made = {s.symbol: s for s in uses.statements}
    taken = {s.name for s in uses.statements}
    copies = {}  # (operand, order of its axes) -> the copy's symbol
    for statement in list(uses.statements):
        if statement.kind != "einsum":
            continue
        spec, form = statement.tensor.spec, contraction_form(statement.tensor.spec)
        permuted = permuted_matmul(spec) if form is None else None
        if permuted is not None:  # each operand read with its axes permuted: (batch..., row, column)
            orders = permuted[2:4]
        elif form is not None and form[0] == "matmul" and form[5]:  # a batched product of the operands as they are
            orders = [tuple(range(len(value.shape))) for value in statement.tensor.operands]
        else:
            continue
        inputs, out = spec.split("->")
        letters, operands, reads = inputs.split(","), list(statement.tensor.operands), list(statement.operands)
        for i, axes in enumerate(orders):
            operand, batch = statement.operands[i], axes[:-2]
            view = made.get(operand)  # a permuted view (k transposed by head) is copied by the product, in any order
            permuted_view = view is not None and view.kind == "rearrange" and view.tensor.key != "contiguous" and \
                view.tensor.perm != tuple(range(len(view.tensor.perm)))
            if not operand.is_Symbol or (batch == tuple(range(len(batch))) and not permuted_view):
                continue  # the batch axes lead: one batch of matrices, read as it is
            order = (*batch, *sorted(axes[-2:]))
            if (operand, order) not in copies:
                copies[operand, order] = _copy_in_order(uses, statement, operand, operands[i].shape, order, taken)
            letters[i] = "".join(letters[i][a] for a in order)
            operands[i] = Value(copies[operand, order], tuple(operands[i].shape[a] for a in order))
            reads[i] = operands[i].expr
            shapes[reads[i]] = operands[i].shape
        if reads != list(statement.operands):
            statement.tensor = replace(statement.tensor, spec=",".join(letters) + "->" + out, operands=tuple(operands))
            statement.operands = tuple(reads)
            uses.rewrite(statement, {})
    return uses


def _copy_in_order(uses: Uses, reader: Statement, operand: sp.Symbol, shape: tuple, order: tuple, taken: set):
    """A statement before `reader` that copies `operand` with its axes in `order` into an array of its own."""
    symbol = sp.Symbol(unused(f"{operand.name}_c", taken), real=True)
    moved = tuple(shape[a] for a in order)
    tensor = Tensor(symbol, moved, "rearrange", operands=(Value(operand, tuple(shape)),), split=tuple(shape),
                    perm=order, key="contiguous")
    uses.insert(uses.statements.index(reader), Statement(symbol.name, "rearrange", tensor=tensor, operands=(operand,),
                                                         shape=moved, broadcast_operands=(False,)))
    return symbol


# -- torch: a sum of two matrix products as one GEMM that adds into the first (addmm_) -------------------------------
# A tangent's product rule, Ȧ·B + A·Ḃ, makes such sums everywhere in an HVP: the second product is added into the
# first's array by the GEMM itself, where it was an array of its own and one more pass to add them.
def _matrices(printer, tensor, operands: tuple, texts: list) -> tuple[str, str]:
    """(left, right): a product's operands as 2-D matrices whose product is its result with its rows flattened (a
    product `_form` takes)."""
    form, shapes = _form(tensor), [value.shape for value in tensor.operands]
    texts = [printer.parenthesize_operand(e, t) for e, t in zip(operands, texts, strict=True)]
    if form[0] == "rows":
        _, operand, weight, transpose = form
        rows = texts[operand] if len(shapes[operand]) == 2 else f"{texts[operand]}.reshape(-1, {shapes[operand][-1]})"
        return rows, texts[weight] + (".T" if transpose else "")
    if form[0] == "matmul":
        _, left, right, t_left, t_right, _ = form
        return texts[left] + (".T" if t_left else ""), texts[right] + (".T" if t_right else "")
    _, left, right = form
    return (f"{texts[left]}.reshape(-1, {shapes[left][-1]}).T", f"{texts[right]}.reshape(-1, {shapes[right][-1]})")


def _torch_sum_of_products(printer, statement, texts, into):
    """texts: the first product (or its array), then the second's operands."""
    left, right = _matrices(printer, statement.tensor, statement.operands[1:], texts[1:])
    first = printer.parenthesize_operand(statement.operands[0], texts[0])
    if len(statement.shape) == 2:
        return f"{first}.addmm_({left}, {right})"
    rows = f"{first}.reshape(-1, {statement.shape[-1]})"
    return f"{rows}.addmm_({left}, {right}).view{printer.dims_text(statement.shape)}"


lookup("einsum").calls = {"torch": Call(_torch_sum_of_products)}


@plan_rule
def sums_of_products(uses: Uses, shapes: dict, backend: str) -> Uses:
    """A + B, A and B matrix products (of any rows) read nowhere else, as one call: B added into A by its GEMM."""
    if call("einsum", backend) is None:
        return uses
    products = inlined_products(uses)
    for statement in list(uses.statements):
        expr = statement.operands[0] if statement.kind == "map" else statement.expr  # a stored value's, or a line's
        if statement.kind not in ("expr", "map") or expr is None or not expr.is_Add or len(expr.args) != 2 or \
                not all(term in products for term in expr.args) or \
                (statement.kind == "map" and any(statement.broadcast_operands)):
            continue
        first, second = sorted(expr.args, key=sp.default_sort_key)
        if any(shapes.get(term) != tuple(statement.shape) or len(uses.readers(term)) != 1 or
               any(products[term].broadcast_operands) or _form(products[term].tensor) is None
               for term in (first, second)):
            continue
        made = Statement(statement.name, "call", operands=(first, *products[second].operands), shape=statement.shape,
                         op="einsum", tensor=products[second].tensor, label=statement.label)
        uses.statements[uses.statements.index(statement)] = made
        uses.statements.remove(products.pop(second))
        uses.rewrite(made, {})
    return uses


def inlined_products(uses: Uses) -> dict:
    """The matrix products that their one reader computes inline, by their symbols: what a call can take over."""
    inlined = inlinable(Program(uses.statements, uses.outputs))
    return {s.tensor.symbol: s for s in uses.statements if s.kind == "einsum" and s.tensor.symbol in inlined}


def _form(tensor: Tensor):
    """A product's contraction form where it is one 2-D GEMM once its rows are flattened (not a batch of them); None
    otherwise."""
    form = contraction_form(tensor.spec)
    return None if form is None or (form[0] == "matmul" and form[5]) else form
