"""The tensor graph: materialized tensors, joined by fused elementwise SymPy expressions.

A *tensor* is a value the generated code stores: an input, a parameter, a constant
(a causal mask), or the result of a contraction (einsum), a reduction (sum, max), a
one-hot encoding, or a linear rearrangement of entries (slice, pad, concat,
rearrange: a reshape and a permutation of axes).
Everything elementwise between tensors is a *Value*: one SymPy expression whose
free symbols stand for tensors, broadcast as NumPy broadcasts. Elementwise steps
therefore fuse by construction, and SymPy sees them whole when it simplifies.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from ..errors import SymPropError
from ..shapes import Shape, broadcast
from ..simplify import tidy

PYTHON_NAMES = set(dir(builtins)) | set(keyword.kwlist)
z = sp.Symbol("z")  # the variable of a scalar function applied elementwise (an activation's definition)


@dataclass(eq=False)
class Tensor:
    symbol: sp.Symbol
    shape: Shape
    op: str  # input | target | param | constant | map | einsum | sum | max | onehot | slice | pad | concat | rearrange
    #          | gather | scatter_add | padding (a key padding mask as -inf and 0, broadcast over heads and queries)
    operands: tuple[Value, ...] = ()
    spec: str = ""  # einsum: "ni,oi->no"; constant: its kind ("causal")
    axes: tuple[int, ...] = ()  # sum, max: the reduced axes; slice, pad, concat: (axis,)
    key: str = ""  # param: its state_dict key; onehot: its class count
    bounds: tuple = ()  # slice: (start, stop) along the axis; pad: (before, after)
    split: tuple = ()  # rearrange: the operand's shape split into single axes, before the permutation
    perm: tuple[int, ...] = ()  # rearrange: the permutation of the split axes
    simplex_axis: int | None = None  # sums to 1 along this axis (one-hot or probability targets)
    zero_sum_axis: int | None = None  # sums to 0 along this axis (a value minus its mean there)
    index_range: int | None = None  # an input of integer indices, each in [0, index_range) (token ids)
    boolean: bool = False  # an input of booleans: a key padding mask, True where a position is padding
    shift: bool = False  # max: a shift the value it is taken from cancels exactly (a max shifted out): no gradient

    @property
    def name(self) -> str:
        return self.symbol.name


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
    def einsum(self, spec: str, *operands: Value, stem: str = "mm") -> Value:
        inputs, output = spec.split("->")
        sizes: dict[str, object] = {}
        for letters, operand in zip(inputs.split(","), operands, strict=True):
            for letter, dim in zip(letters, operand.shape, strict=True):
                if sizes.setdefault(letter, dim) != dim:
                    raise ValueError(f"einsum {spec}: axis {letter} is {sizes[letter]} and {dim}")
        shape = tuple(sizes[letter] for letter in output)
        return self.interned(stem, shape, "einsum", operands=operands, spec=spec)

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

    def slice(self, value: Value, axis: int, start: int, stop: int, stem: str) -> Value:
        shape = tuple(stop - start if a == axis else d for a, d in enumerate(value.shape))
        return self.interned(stem, shape, "slice", operands=(value,), axes=(axis,), bounds=(start, stop))

    def pad(self, value: Value, axis: int, before: int, after: int, stem: str) -> Value:
        """Zeros around value along axis: the adjoint of a slice."""
        shape = tuple(d + before + after if a == axis else d for a, d in enumerate(value.shape))
        return self.interned(stem, shape, "pad", operands=(value,), axes=(axis,), bounds=(before, after))

    def concat(self, values: tuple[Value, ...], axis: int, stem: str) -> Value:
        shape = tuple(sum(v.shape[axis] for v in values) if a == axis else d for a, d in enumerate(values[0].shape))
        return self.interned(stem, shape, "concat", operands=tuple(values), axes=(axis,))

    def rearrange(self, value: Value, split: tuple, perm: tuple[int, ...], shape: tuple, stem: str) -> Value:
        """value.reshape(split).transpose(perm).reshape(shape): entries moved, none changed."""
        return self.interned(stem, tuple(shape), "rearrange", operands=(value,), split=tuple(split),
                             perm=tuple(perm))

    def gather(self, table: Value, index: Value, stem: str) -> Value:
        """table[index]: the rows of a table picked by integer indices (an embedding's lookup)."""
        shape = tuple(index.shape) + tuple(table.shape[1:])
        return self.interned(stem, shape, "gather", operands=(table, index))

    def scatter_add(self, values: Value, index: Value, rows, stem: str) -> Value:
        """A table of `rows` rows, where row r is the sum of the rows of values whose index is r."""
        shape = (rows,) + tuple(values.shape[len(index.shape):])
        return self.interned(stem, shape, "scatter_add", operands=(values, index))

    def onehot(self, target: Value, classes: int) -> Value:
        return self.interned("onehot", target.shape + (classes,), "onehot", operands=(target,),
                             key=str(classes), simplex_axis=len(target.shape))

    def label(self, value: Value, name: str, reserved: bool = False) -> Value:
        """Name an expression so that printed code and derivations show it by that name (`reserved`: a name
        taken with `fresh` already)."""
        names_an_array = any(s in self.tensors for s in value.expr.free_symbols)  # not 1/N, not a number
        if not value.expr.is_Symbol and names_an_array and value.expr not in self.labels:
            self.labels[value.expr] = name if reserved else self.fresh(name).name
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


# -- adjoints ------------------------------------------------------------------------------------------
# The vector-Jacobian product of each op, as a table keyed by op (derive.backward looks rules up here).
# A rule takes (graph, tensor, its cotangent, which operands need one) and yields (operand, cotangent)
# pairs. Each follows from its op's definition: these ops only move entries, so each one's adjoint is
# the move undone. The rules for einsum, sum and max sit beside those ops.
VJP: dict[str, Callable] = {}


def defvjp(op: str):
    def register(rule):
        VJP[op] = rule
        return rule

    return register


@defvjp("map")
def _map_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0]:  # a stored elementwise value: the chain rule goes on through it
        yield tensor.operands[0], cotangent


@defvjp("slice")
def _slice_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0]:  # zeros around the slice
        (operand,), (axis,), (start, stop) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.pad(cotangent, axis, start, operand.shape[axis] - stop, stem=f"d{tensor.name}_padded")


@defvjp("pad")
def _pad_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0]:  # the slice that the padding surrounds
        (operand,), (axis,), (before, _) = tensor.operands, tensor.axes, tensor.bounds
        yield operand, graph.slice(cotangent, axis, before, before + operand.shape[axis],
                                   stem="d" + graph.name_of(operand.expr, tensor.name))


@defvjp("concat")
def _concat_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    (axis,), start = tensor.axes, 0  # each operand's own slice
    for j, operand in enumerate(tensor.operands):
        stop = start + operand.shape[axis]
        if needed[j]:
            yield operand, graph.slice(cotangent, axis, start, stop,
                                       stem="d" + graph.name_of(operand.expr, f"{tensor.name}_{j}"))
        start = stop


@defvjp("rearrange")
def _rearrange_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    if needed[0]:  # the inverse rearrangement
        (operand,) = tensor.operands
        inverse = tuple(sorted(range(len(tensor.perm)), key=tensor.perm.__getitem__))
        moved = tuple(tensor.split[a] for a in tensor.perm)
        yield operand, graph.rearrange(cotangent, moved, inverse, operand.shape,
                                       stem="d" + graph.name_of(operand.expr, tensor.name))


@defvjp("einsum")
def _einsum_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    """The cotangent of an operand is the einsum of the output's cotangent with the other operands, its
    index spec read off the forward spec."""
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
        yield operand, graph.einsum(spec, cotangent, *(tensor.operands[k] for k in others), stem=stem)


@defvjp("gather")
def _gather_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    """gather(W, i) = onehot(i) @ W, a contraction over the table's rows: Σ_v [i_ns = v]·W_vd. It is linear in W,
    and the einsum rule gives its adjoint, onehot(i)ᵀ @ δ, that is Σ_ns [i_ns = v]·δ_nsd: each row of the
    cotangent added into the row of W it was read from, a scatter-add (no one-hot is made)."""
    table, index = tensor.operands
    if needed[0]:
        yield table, graph.scatter_add(cotangent, index, table.shape[0], stem="d" + graph.name_of(table.expr, "table"))


@defvjp("scatter_add")
def _scatter_add_vjp(graph: Graph, tensor: Tensor, cotangent: Value, needed):
    """The transpose of the one-hot contraction above is the contraction itself: a gather."""
    values, index = tensor.operands
    if needed[0]:
        yield values, graph.gather(cotangent, index, stem=f"d{tensor.name}_rows")
