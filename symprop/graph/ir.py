"""The tensor graph: materialized tensors, joined by fused elementwise SymPy expressions.

A *tensor* is a value the generated code stores: an input, a target, a parameter, or the result of a primitive op
(a contraction, a reduction, a move of entries, a constant: each one module of symprop/ops/, applied by name).
Everything elementwise between tensors is a *Value*: one SymPy expression whose
free symbols stand for tensors, broadcast as NumPy broadcasts. Elementwise steps
therefore fuse by construction, and SymPy sees them whole when it simplifies.
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field, fields

import sympy as sp

from ..errors import SymPropError
from ..ops.registry import lookup
from ..shapes import Shape, broadcast
from ..simplify import tidy

PYTHON_NAMES = set(dir(builtins)) | set(keyword.kwlist)
z = sp.Symbol("z")  # the variable of a scalar function applied elementwise (an activation's definition)


@dataclass(eq=False)
class Tensor:
    symbol: sp.Symbol
    shape: Shape
    op: str  # input | target | param, or the name of the primitive op that computes it
    operands: tuple[Value, ...] = ()
    # the primitive's attributes, each op's module says which it reads: a contraction's index spec ("ni,oi->no");
    # reduced axes, or the axis of a slice; a parameter's state_dict key (a one-hot encoding's class count); a slice's
    # (start, stop); a rearrangement's shape split into single axes, and the permutation of those
    spec: str = ""
    axes: tuple[int, ...] = ()
    key: str = ""
    bounds: tuple = ()
    split: tuple = ()
    perm: tuple[int, ...] = ()
    simplex_axis: int | None = None  # sums to 1 along this axis (one-hot or probability targets)
    zero_sum_axis: int | tuple | None = None  # sums to 0 along this axis, or these (a value minus its mean there)
    # the backward pass reads this value as an expression of others: a norm's x − μ as x̂/σ⁻¹, so that it keeps x̂
    read_back_as: sp.Expr | None = None
    keeps_cotangent: bool = False  # its cotangent is stored under its name: a layer norm's x̂̄, read by two sums and δx
    index_range: int | None = None  # an input of integer indices, each in [0, index_range) (token ids)
    # ... or its columns of the last axis, each of its own table (x[:, 0] user ids, x[:, 1] item ids): (bound or 0, ...)
    column_ranges: tuple = ()
    boolean: bool = False  # an input of booleans (a mask of torch's, read by from_torch)
    padding: bool = False  # ... a key padding mask: True where a position is padding
    integer: bool = False  # an input of integers (from torch: ids, or a mask of 0 and 1 read as numbers)
    shift: bool = False  # max: a shift the value it is taken from cancels exactly (a max shifted out): no gradient
    data: tuple = ()  # a constant's numbers, row-major (a buffer the model holds), as the code writes them
    skip: int | None = None  # a gather's index whose rows take no gradient (an embedding's padding_idx)
    window: tuple = ()  # windows and fold: (size, stride, dilation) along each of their axes
    first: bool = False  # max: its gradient goes to the first entry equal to it, as max pooling's does

    @property
    def name(self) -> str:
        return self.symbol.name


def ids_bound(tensor: Tensor):
    """The generated code's bound of an input's ids: one number, or one for each column of its last axis (None for a
    column that no table reads: a timestamp, or a count read as a number)."""
    if not tensor.column_ranges:
        return tensor.index_range
    each = [min(b for b in (tensor.index_range, c) if b) if tensor.index_range or c else None
            for c in tensor.column_ranges]
    return each[0] if len(set(each)) == 1 else each


OP_ATTRIBUTES = ("spec", "axes", "key", "bounds", "split", "perm", "skip", "window")  # what an op reads of a tensor
_DEFAULTS = {f.name: f.default for f in fields(Tensor)}


@dataclass(frozen=True)
class Value:
    """An elementwise expression over tensors, with its logical (broadcast) shape."""

    expr: sp.Expr
    shape: Shape


@dataclass
class Graph:
    tensors: dict[sp.Symbol, Tensor] = field(default_factory=dict)  # in creation (topological) order
    labels: dict[sp.Expr, str] = field(default_factory=dict)  # readable names for expressions
    cotangent_names: dict[sp.Symbol, str] = field(default_factory=dict)  # mm0 -> "dz0"
    notes: list[tuple[str, ...]] = field(default_factory=list)  # simplifications made: (kind, *names)
    # the scalar functions of z applied as activations, for the reader: definition -> how the document names it
    activations: dict[sp.Expr, str] = field(default_factory=dict)
    made_by: dict[sp.Expr, str] = field(default_factory=dict)  # value -> the op that made it
    # tensor -> [(operand it is read in, cotangent of that operand, local derivative)]: the chain rule, kept
    chain: dict[sp.Symbol, list[tuple[sp.Expr, sp.Expr, sp.Expr]]] = field(default_factory=dict)
    limit: int | None = None  # while a model is traced: at most this many tensors (a derivation budget)
    # The math as a book writes it, for the document: no log clamp, no max shift (the code keeps both)
    book: bool = False
    safeguarded: bool = False  # a clamp or a max shift was built: the book form differs from the code
    # the module path (transformer.h.0.attn) each named value was made in, for the document's groups; `path` is the
    # one being traced (the front end sets it), or whose cotangent is being derived
    module_of: dict[str, str] = field(default_factory=dict)
    path: str = ""
    # the model's target as class indices: (how many classes, the ignore_index skipped or None), for the code's check
    class_range: tuple | None = None
    # each BatchNorm in training mode that tracks running statistics, in call order: (its state_dict path, momentum,
    # Σx and Σ(x − μ)² per channel, the count of entries summed, the call: path, or path#2 for its second call), for
    # the code that updates them
    running_statistics: list = field(default_factory=list)
    _interned: dict = field(default_factory=dict)
    _taken: set = field(default_factory=lambda: {"N"})  # names given out: tensors' and labels'

    # -- tensors -------------------------------------------------------------
    def fresh(self, stem: str) -> sp.Symbol:
        name, i = stem, 1
        while name in self._taken or name in PYTHON_NAMES:  # generated code must not shadow sum or len
            name, i = f"{stem}_{i}", i + 1
        self._taken.add(name)
        return sp.Symbol(name, real=True)

    def add(self, stem: str, shape: Shape, op: str, exact: bool = False, **attrs) -> Value:
        """A new tensor named `stem` (or stem_1, ... if taken); `exact`: named `stem` itself, reserved before."""
        symbol = sp.Symbol(stem, real=True) if exact else self.fresh(stem)
        self._taken.add(stem)
        if self.limit is not None and len(self.tensors) >= self.limit:
            raise SymPropError(f"the model makes more than {self.limit} tensors (products, sums, stored values), "
                               "more than symprop derives in reasonable time")
        tensor = Tensor(symbol, tuple(shape), op, **attrs)
        self.tensors[tensor.symbol] = tensor
        if self.path:
            self.module_of[symbol.name] = self.path
        return Value(tensor.symbol, tensor.shape)

    @staticmethod
    def _key(shape, op, attrs):
        return op, tuple(shape), tuple(sorted((k, v) for k, v in attrs.items() if k != "simplex_axis"))

    def has(self, shape: Shape, op: str, **attrs) -> bool:
        return self._key(shape, op, attrs) in self._interned

    def interned(self, stem: str, shape: Shape, op: str, **attrs) -> Value:
        """The same computation twice is one tensor (hash-consing)."""
        key = self._key(shape, op, attrs)
        if key not in self._interned:
            self._interned[key] = self.add(stem, shape, op, **attrs)
        return self._interned[key]

    def tensor(self, symbol: sp.Symbol) -> Tensor:
        return self.tensors[symbol]

    def tensor_symbols(self, expr: sp.Expr) -> list[sp.Symbol]:
        return sorted((s for s in expr.free_symbols if s in self.tensors), key=lambda s: s.name)

    def shape_of(self, expr: sp.Expr) -> Shape:
        """The shape an expression has as computed (it may broadcast to a larger logical shape)."""
        return broadcast(*(self.tensors[s].shape for s in self.tensor_symbols(expr)))

    # -- operations ----------------------------------------------------------
    def apply(self, name: str, operands=(), stem: str = "", shape=None, **attrs) -> Value:
        """The primitive op `name` (symprop/ops/<name>.py) applied to `operands`, with the attributes its module
        reads; its shape is the op's shape rule's unless given. The same computation twice is one tensor."""
        op = lookup(name)
        operands = tuple(operands)
        if shape is None:
            shape = op.shape(operands, **attrs)
        return self.interned(stem or op.stem, tuple(shape), name, operands=operands, **attrs)

    def again(self, tensor: Tensor, operands, stem: str = "", **changes) -> Value:
        """`tensor`'s op applied to other operands, with its attributes (but `changes`): a linear op's JVP, the op
        applied to its operands' tangents."""
        attrs = {name: getattr(tensor, name) for name in OP_ATTRIBUTES if getattr(tensor, name) != _DEFAULTS[name]}
        return self.apply(tensor.op, operands, stem=stem or tensor.name + "_dot", shape=tensor.shape,
                          **{**attrs, **changes})

    def activate(self, value: Value, scalar: sp.Expr, name: str, latex: str = "") -> Value:
        """scalar(z) applied elementwise to value, labelled `name`; with `latex` (how the document names the
        function), its definition is kept for the reader, who sees its derivative named."""
        if latex and scalar != z:
            self.activations.setdefault(scalar, latex)
        return self.label(Value(tidy(scalar.xreplace({z: value.expr})), value.shape), name)

    def named(self, value: Value, name: str) -> Value:
        """The value stored under a name of its own (a "map" tensor). Later expressions read the name,
        so fusion stops here and expressions stay small through deep stacks; its cotangent is d<name>."""
        stored = self.add(name, value.shape, "map", operands=(value,))
        self.cotangent_names[stored.expr] = "d" + stored.expr.name
        return stored

    def label(self, value: Value, name: str, reserved: bool = False) -> Value:
        """Name an expression so that printed code and derivations show it by that name (`reserved`: a name
        taken with `fresh` already)."""
        names_an_array = any(s in self.tensors for s in value.expr.free_symbols)  # not 1/N, not a number
        if not value.expr.is_Symbol and names_an_array and value.expr not in self.labels:
            self.labels[value.expr] = name if reserved else self.fresh(name).name
            if self.path:
                self.module_of[self.labels[value.expr]] = self.path
        return value

    def rename(self, value: Value, name: str) -> None:
        """Call a value by a name the user gave it (a spec's `name = "h1"`), in place of its given label."""
        if value.expr in self.labels:
            self._taken.discard(self.labels.pop(value.expr))
        self.label(value, name)

    def uses(self, expr: sp.Expr) -> int:
        """How many operands of tensors read `expr` (a residual's input is read twice)."""
        return sum(op.expr.has(expr) for t in self.tensors.values() for op in t.operands)

    def name_of(self, expr: sp.Expr, fallback: str) -> str:
        """The readable name of an expression: its label, its own name, or the fallback."""
        if expr in self.labels:
            return self.labels[expr]
        return expr.name if expr.is_Symbol else fallback

    def note(self, kind: str, *names: str) -> None:
        """Record a simplification for the reader; the printers say it in words (see NOTES)."""
        if (kind, *names) not in self.notes:
            self.notes.append((kind, *names))
