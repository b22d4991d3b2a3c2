"""softmax and log_softmax over the last axis: torch.softmax and torch.log_softmax, nn.Softmax and nn.LogSoftmax.
Over another axis (a per-pixel classifier's log_softmax(dim=1)), that axis is swapped with the last, and back.

Built from max, exp, sum and log: log_softmax(z) = z − m − log Σ_k exp(z_k − m), m = max_k z_k. The shift by m keeps
every exp finite; it cancels from the value, so no gradient flows through it (reductions.py)."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import in_torch, resolved, symbolic, torch_function
from ..declare.module import Module
from ..declare.tensor import SymbolicTensor, axis_of
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..notes import define
from ..plan.uses import Uses, reads_rewritten, unused
from ..program import Statement
from ..shapes import N
from .max import reduce_max
from .rearrange import transpose
from .registry import Call, TorchNames, call, defop, plan_rule
from .sum import reduce_sum

MAX_SHIFT = define(
    "max shift", "the code shifts the row maximum out before exp (it cancels from the softmax)",
    r"The code shifts each row's maximum out before $\exp$ (the log-sum-exp), so that no $\exp$ overflows; the "
    r"softmax, and so every formula here, is unchanged by it.")


def log_softmax_graph(g: Graph, value: Value, softmax_name: str, suffix: str = "") -> Value:
    """z − logsumexp(z), with the max shifted out: m = max_k z_k, s = Σ_k exp(z_k − m); the softmax e/s is labelled
    `softmax_name`."""
    shifted, exps, total = _shifted_exps(g, value, suffix)
    g.label(Value(exps.expr / total.expr, value.shape), softmax_name)
    return Value(shifted.expr - sp.log(total.expr), value.shape)


def softmax_graph(g: Graph, value: Value, name: str, suffix: str = "") -> Value:
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis."""
    if g.book:
        g.note(MAX_SHIFT)
    _, exps, total = _shifted_exps(g, value, suffix)
    return g.label(Value(exps.expr / total.expr, value.shape), name)


def _shifted_exps(g: Graph, value: Value, suffix: str):
    last = len(value.shape) - 1
    kept = value.shape[:-1] + (1,)
    if g.book:  # the softmax as a book writes it; the code's max shift is said in a note (the loss's, or this)
        exps = g.label(Value(sp.exp(value.expr), value.shape), "e" + suffix)
        return value, exps, reduce_sum(g, exps, kept, stem="s" + suffix)
    g.safeguarded = True
    top = reduce_max(g, value, last, stem="m" + suffix, shift=True)
    # Named, so that printed code computes z − m before adding log s, as torch does: with
    # m + log(s) − z, a small log s is rounded away against a large m.
    shifted = g.label(Value(value.expr - top.expr, value.shape), "shifted" + suffix)
    exps = g.label(Value(sp.exp(shifted.expr), value.shape), "e" + suffix)
    total = reduce_sum(g, exps, kept, stem="s" + suffix)
    return shifted, exps, total


def swapped_axis(input, dim, where: str) -> int | None:
    """The axis that `dim` names, where it is to be swapped with the last; None where it is the last."""
    value = symbolic(input, where)
    if isinstance(dim, (tuple, list)) and len(dim) != 1:
        raise fail(f"{where} acts on one axis at a time, got dim={list(dim)}")
    axis = axis_of(dim[0] if isinstance(dim, (tuple, list)) else dim, len(value.shape), where)
    if axis == len(value.shape) - 1:
        return None  # an axis of the batch's size too (a contrastive loss's (N, N) scores)
    if value.shape[axis] == N:
        raise fail(f"{where} over the batch axis (dim={dim}) of a value of {len(value.shape)} axes is not supported")
    return axis


def softmax(input, dim=-1, _stacklevel=3, dtype=None):
    """exp(z − m)/Σ_k exp(z_k − m) over the last axis, as torch.softmax (F.softmax's _stacklevel is torch's own)."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(SOFTMAX.functions[0])(input, dim=dim)
    axis = swapped_axis(input, dim, "F.softmax")
    if axis is not None:
        return transpose(softmax(transpose(input, axis, -1)), axis, -1)
    value, trace = symbolic(input, "F.softmax"), running()
    name = trace.stem("h")
    log_p = log_softmax_graph(trace.graph, value, name)
    result = trace.graph.label(Value(sp.exp(log_p.expr), value.shape), name)
    trace.graph.made_by[result.expr] = "softmax"
    return SymbolicTensor(result)


def log_softmax(input, dim=-1, _stacklevel=3, dtype=None):
    """z − log Σ_k e^(z_k) over the last axis, as torch.log_softmax."""
    input = resolved(input)
    if in_torch(input):
        return torch_function(LOG_SOFTMAX.functions[0])(input, dim=dim)
    axis = swapped_axis(input, dim, "F.log_softmax")
    if axis is not None:
        return transpose(log_softmax(transpose(input, axis, -1)), axis, -1)
    value, trace = symbolic(input, "F.log_softmax"), running()
    log_p = log_softmax_graph(trace.graph, value, trace.stem("p"))
    return SymbolicTensor(trace.graph.label(log_p, trace.stem("h")))


class Softmax(Module):
    """torch.nn.Softmax (over the last axis, by default)."""

    kind, toml_keys = "softmax", ()
    function = staticmethod(softmax)

    def __init__(self, dim: int = -1):
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise SymPropError(f"{type(self).__name__}: dim must be an axis, got {dim!r}")
        self.dim = dim  # None: torch's implicit choice, by the input's number of axes

    @classmethod
    def from_toml(cls, table, width: int):
        return cls()

    @classmethod
    def from_torch(cls, module):
        return cls(module.dim)

    def output_width(self, width: int) -> int:
        return width

    def forward(self, x):
        implicit = 0 if len(x.shape) in (0, 1, 3) else 1  # torch's nn.Softmax(dim=None), which it warns about
        return self.function(x, dim=implicit if self.dim is None else self.dim)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, type(self).__name__)(dim=self.dim)

    def describe(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class LogSoftmax(Softmax):
    """torch.nn.LogSoftmax (over the last axis, by default)."""

    kind = "log_softmax"
    function = staticmethod(log_softmax)


SOFTMAX = TorchNames(("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"), ("softmax",),
                     "Softmax", ("aten._softmax.default", "aten.softmax.int"))
LOG_SOFTMAX = TorchNames(("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.special.log_softmax"),
                         ("log_softmax",), "LogSoftmax", ("aten._log_softmax.default", "aten.log_softmax.int"))


# -- one call, where the backend has one ---------------------------------------------------------------------------
def _torch_call(function: str):
    def spell(printer, statement, texts, into):
        # counted from the end: an operand computed smaller (a constant broadcast over the batch) has fewer axes
        axis = statement.tensor.axes[0] - len(statement.tensor.operands[0].shape)
        dim = f", dim={axis}" + (f", out={into}" if into else "")
        return f"{printer._module_format(function)}({texts[0]}{dim})"

    return Call(spell, into_input=True)


defop("softmax", torch=SOFTMAX, layer=Softmax, functional=softmax, calls={"torch": _torch_call("torch.softmax")},
      front={name: lambda x, dim, *_: softmax(x, dim) for name in SOFTMAX.aten})
defop("log_softmax", torch=LOG_SOFTMAX, layer=LogSoftmax, functional=log_softmax,
      calls={"torch": _torch_call("torch.log_softmax")},
      front={name: lambda x, dim, *_: log_softmax(x, dim) for name in LOG_SOFTMAX.aten})


@plan_rule
def one_call(uses: Uses, shapes: dict, backend: str) -> Uses:
    """The max, shift, exp and sum a softmax is built of, as one call of the backend's softmax or log-softmax."""
    if call("log_softmax", backend) is None:
        return uses
    for statement in [s for s in uses.statements if s.kind == "max"]:
        uses = _as_one_call(uses, statement, shapes)
    return uses


def _as_one_call(uses: Uses, max_statement: Statement, shapes: dict) -> Uses:
    """m = max z, shifted = z − m, e = exp(shifted), s = Σe (over one axis) as one call: log-softmax ℓ, read as
    shifted = ℓ + log s and e = s·exp(ℓ); or the softmax exp(ℓ) itself where only that is read. Done only where s
    then cancels everywhere (p = e/s is exp(ℓ), log s − shifted is −ℓ)."""
    statements, z, m = uses.statements, max_statement.operands[0], max_statement.symbol
    axes, ndim = max_statement.tensor.axes, len(max_statement.tensor.operands[0].shape)

    def find(kind, match):
        return next((s for s in statements if s.kind == kind and match(s)), None)

    shifted_statement = find("expr", lambda s: s.expr == z - m)
    shifted = shifted_statement.symbol if shifted_statement else None
    e_statement = shifted and find("expr", lambda s: s.expr == sp.exp(shifted))
    e = e_statement.symbol if e_statement else None
    s_statement = e and find("sum", lambda s: s.operands == (e,) and s.tensor.axes == axes and
                             s.shape == max_statement.shape)
    if len(axes) != 1 or len(max_statement.shape) != ndim or s_statement is None:
        return uses
    group = (max_statement, shifted_statement, e_statement, s_statement)
    total = s_statement.symbol
    log = sp.Symbol(unused("logp", {s.name for s in statements}), real=True)
    mapping = {shifted: log + sp.log(total), e: total * sp.exp(log)}
    rest = [s for s in statements + uses.outputs if all(s is not g for g in group)]
    if any(reads_rewritten(s, mapping) & {m, shifted, e, total} for s in rest):
        return uses
    for statement in rest:
        uses.rewrite(statement, mapping)
    readers = [s for s in rest if log in uses.of(s)]
    value, hidden = sp.exp(log), sp.Dummy()
    only_exp = not any(log in reads_rewritten(r, {value: hidden}) for r in readers)
    made = Statement(log.name, "call", tensor=max_statement.tensor, operands=(z,), shape=shapes[shifted],
                     broadcast_operands=max_statement.broadcast_operands, op="log_softmax")
    for op, named_value in [("softmax", value)] * only_exp + [("log_softmax", log)]:
        named = next((s for s in readers if s.kind == "expr" and s.expr == named_value), None)
        if named is not None:  # the step the graph names (p, or a LogSoftmax layer's output) is the call
            made.name, made.op = named.name, op
            for reader in readers:
                uses.rewrite(reader, {named_value: named.symbol})
            rest = [s for s in rest if s is not named]
            break
    shapes[made.symbol] = shapes[shifted]
    where, kept = statements.index(max_statement), {id(s) for s in rest}
    return Uses([s for s in statements[:where] if id(s) in kept] + [made] +
                [s for s in statements[where:] if id(s) in kept], uses.outputs)
