"""einsum: a contraction of tensors over shared indices, by its index spec ("ni,oi->no"); torch.einsum, and @ in
every form (torch.matmul, mm, bmm). Its derivative follows from the spec (graph.ir's rule); each backend prints the
contractions that are one matrix product as that product (x @ w.T, q @ k.mT)."""

from __future__ import annotations


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
