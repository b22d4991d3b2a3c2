"""A primitive: an op of the tensor graph whose result the generated code stores as an array of its own (a
contraction, a sum, a slice, a one-hot encoding), as jax's `lax` primitives are objects that carry their rules.

Everything about one primitive sits in its module, on its `Primitive`:
- `shape(operands, **attrs)`: the shape of its result (None: the caller gives it);
- `vjp(graph, tensor, cotangent, needed)`: its vector-Jacobian product, which yields (operand, its cotangent) pairs
  for the operands whose cotangent is `needed`; it follows from the definition (a slice's adjoint pads with zeros);
- `jvp(graph, tensor, tangents)`: its Jacobian-vector product, the tangent of its result from its operands'
  tangents (None where an operand does not move), or None where it does not move: for second order, forward mode
  over the gradient program (forward_mode.py). A linear op's is the op applied to the tangents (`linear_jvp`);
  constants' and indices' is zero (`no_jvp`);
- `spell[backend](printer, statement, texts)`: the statement's code (or mathematics) in that backend, from the
  texts of its operands;
- `cost[backend]`: its passes over its result, for the memory plan; and the plan's facts (`recompute`,
  `owns_array`, `view`, `aliases`, `product`, `sums`, `copied`, `batch_rows`), and the printers' (`finite`);
- `torch`: torch's names for it, and `front[name]`: what each of those names is on symbolic tensors.

The graph applies a primitive by name (`graph.apply("slice", ...)`), the derivation finds its `vjp` and the printers
its `spell` through the registry.
"""

from __future__ import annotations

from collections.abc import Callable

from .registry import Helper, Op, TorchNames, register


class Primitive(Op):
    stem = "t"  # the name its results take, where the caller gives none
    parenthesized = True  # its spellings take their operands' texts parenthesized as operands: (a + b)[1:3]
    # what the memory plan may do with it:
    recompute = False  # compute it again for a late read, where that lowers the peak and costs little
    owns_array = False  # its code makes a new array, which no other name shares (not a view, not an input)
    view = False  # a view of its operand (a reshape): where the operand is an expression, computed into its array
    read_only = False  # a view that may not be written (windows overlap: NumPy's sliding_window_view is read-only)
    aliases = False  # its result shares its operand's memory (basic indexing), without being a view to compute into
    product = False  # a product of arrays: read once, it is printed in place of its read (x @ w.T + b)
    sums = False  # Σ of its one operand over its axes: factors constant along them may move out
    moves = False  # its entries are its first operand's, moved (token ids sliced or reshaped are token ids still)
    stops_gradient = False  # its value is its operand's, read as a constant: the chain rule stops there
    finite = False  # finite wherever its operands are (sums, products, moves of their entries; numbers of its own)
    copied = False  # a view that a product reads as a copy in BLAS's layout (overlapping windows: im2col)
    # tensor -> "kept" where each sample's rows of its result come from that sample's rows of its operands alone (the
    # batch first), "summed" where the result sums them over the samples, None otherwise: a chunk of samples at a time
    batch_rows: Callable | None = None
    spell: dict = {}
    cost: dict = {}
    helpers: tuple[Helper, ...] = ()  # functions its spellings define at the top of a generated module
    front: dict = {}  # torch's name (a function's qualified name, a method's name) -> its meaning on symbolic tensors
    latex_stem = ""  # how the document writes the names of its results, by a letter of its own (T)

    @staticmethod
    def shape(operands: tuple, **attrs):
        return None

    @staticmethod
    def vjp(graph, tensor, cotangent, needed):
        raise NotImplementedError

    @staticmethod
    def jvp(graph, tensor, tangents):
        raise NotImplementedError

    def text(self, printer, statement, texts: list[str]) -> str:
        """The statement in `printer`'s backend."""
        if printer.backend not in self.spell:
            raise NotImplementedError(f"the {printer.backend} backend cannot print the op {self.name!r}")
        return self.spell[printer.backend](printer, statement, texts)


def primitive(name: str, *, shape: Callable | None = None, vjp: Callable, jvp: Callable, spell: dict,
              torch: TorchNames | None = None, functional: Callable | None = None, **facts) -> Primitive:
    """Make and register a primitive (see Primitive for what each fact means)."""
    op = Primitive()
    op.name, op.torch, op.functional, op.spell = name, torch or TorchNames(), functional, spell
    if shape is not None:
        op.shape = shape
    op.vjp, op.jvp = vjp, jvp
    for key, value in facts.items():
        if not hasattr(op, key):
            raise TypeError(f"a primitive has no fact {key!r}")
        setattr(op, key, value)
    return register(op)


def linear_jvp(graph, tensor, tangents):
    """The JVP of an op linear in its first operand, its others indices or none (a slice, a gather, a fold): the op
    applied to that operand's tangent."""
    if tangents[0] is None:
        return None
    return graph.again(tensor, (tangents[0], *tensor.operands[1:]))


def no_jvp(graph, tensor, tangents):
    """The JVP of a value that nothing moves (a constant, indices, a value read as a constant): zero."""
    return None


def reduction(spell_reduce: Callable) -> Callable:
    """The spelling of a reduction over a statement's axes, from the backend's call(printer, text, axes, keepdims):
    the axes kept as 1, or dropped, or (neither: leading axes dropped, later ones kept) kept and then reshaped."""

    def spell(printer, statement, texts):
        ndim, axes = len(statement.tensor.operands[0].shape), statement.tensor.axes
        if len(statement.shape) == ndim:
            return spell_reduce(printer, texts[0], axes, True)
        if len(statement.shape) == ndim - len(axes):
            return spell_reduce(printer, texts[0], axes, False)
        return printer.reshape(spell_reduce(printer, texts[0], axes, True), statement.shape)

    return spell


def shapes_of(statement) -> list[tuple]:
    """The shapes of a statement's operands, as the graph has them."""
    return [value.shape for value in statement.tensor.operands]
