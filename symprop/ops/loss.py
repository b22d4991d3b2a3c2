"""What every loss shares: torch's reductions, the checks of its operands, and the loss module (S.MSELoss(), ...), a
Module of (output, target). Each loss is one module beside this one (mse_loss.py, cross_entropy.py, ...): its
per-element definition, its functional (F.mse_loss), its module and its torch names. Any callable of (output, target)
built from symprop's vocabulary is a loss too; these are the ones with a name."""

from __future__ import annotations

from ..declare.calls import in_torch, resolved, symbolic
from ..declare.module import Module
from ..declare.tensor import SymbolicTensor, shape_text
from ..declare.trace import fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..shapes import N, size
from ..simplify import tidy
from .registry import TorchNames, defop
from .sum import reduce_sum

REDUCTIONS = ("mean", "sum")


def tidied(g: Graph, each: Value) -> Value:
    """The per-element losses as the code computes them (softplus, finite) or as the book writes them (log σ), with
    the notes of what was rewritten."""
    if g.book:
        return each
    fired: set = set()
    expr = tidy(each.expr, fired)
    for note in sorted(fired):
        g.note(note)
    return Value(expr, each.shape)


def reduce_loss(g: Graph, each: Value, reduction: str, per_sample: bool = False, count=None) -> Value:
    """Σ of the per-element losses, divided as torch's reduction says: "sum", "mean" (over every element,
    or over samples when `per_sample`: cross-entropy's rows, or over `count` of them), "batchmean" (over the
    batch)."""
    total = reduce_sum(g, tidied(g, each), (), stem="total")
    rows = count if count is not None else size(each.shape[:-1] if per_sample else each.shape)
    divisor = {"sum": 1, "mean": rows, "batchmean": N}[reduction]
    return Value(total.expr / divisor, ())


def operands(name, input, target, reduction, allowed=REDUCTIONS) -> tuple[Value, Value]:
    if reduction not in allowed:
        raise fail(f"F.{name}: reduction must be one of {', '.join(allowed)}, got {reduction!r}")
    return symbolic(input, f"F.{name}"), symbolic(target, f"F.{name} target")


def same_shape(name, y: Value, t: Value):
    if y.shape != t.shape:
        raise fail(f"F.{name}: target {shape_text(t.shape)} and input {shape_text(y.shape)} differ in shape")


def reduced(y: Value, each, reduction, per_sample=False, count=None) -> SymbolicTensor:
    """The loss of per-element losses `each`, reduced; reduction "none" of a loss over classes (on the last axis,
    `per_sample`): each sample's loss, its sum over the classes (0 for an ignored target), which the caller reduces
    itself (F.cross_entropy(..., reduction="none").mean())."""
    g = running().graph
    if reduction != "none":
        return SymbolicTensor(reduce_loss(g, Value(each, y.shape), reduction, per_sample, count))
    summed = reduce_sum(g, tidied(g, Value(each, y.shape)), (*y.shape[:-1], 1), stem="losses")
    return SymbolicTensor(summed).reshape(-1, *y.shape[1:-1])


def unsupported(name, **options):
    for option, value in options.items():
        if value is not None:
            raise fail(f"F.{name}: {option} is not supported by symprop yet")


def per_element(name: str, input, target, reduction: str, each, torch_call, check=None, **unsupported_options):
    """A loss that is the reduction of one expression per element, each(graph, y, t) (F.mse_loss): torch_call() on
    torch tensors; on symbolic ones, the loss added to the graph. `check(y, t)` sees the operands first; options
    given a value other than None are refused (not supported yet)."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        return torch_call(input, target)
    unsupported(name, **unsupported_options)
    y, t = operands(name, input, target, reduction, REDUCTIONS + ("none",))
    if check is not None:
        check(y, t)
    same_shape(name, y, t)
    g = running().graph
    if reduction == "none":  # each element's loss, which the caller weighs and reduces itself
        return SymbolicTensor(Value(each(g, y.expr, t.expr) if g.book else tidy(each(g, y.expr, t.expr)), y.shape))
    return reduced(y, each(g, y.expr, t.expr), reduction)


class Loss(Module):
    """A loss of (output, target), reduced as torch's `reduction` says."""

    is_loss = True
    kind = ""
    target = "same"  # the target's kind: "same" (the output's shape), "index" (class indices) or "probs"
    reductions = REDUCTIONS
    function = None  # the functional, F.<name>
    torch_name = ""  # the torch.nn class
    target_domain = "real"  # what a target holds: "real" numbers, "unit" (in [0, 1]), "simplex" (rows of probabilities)
    decision = None  # a binary classifier's threshold on the output (0.5 on probabilities), for its accuracy

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self.reductions:
            raise SymPropError(f"{type(self).__name__}: reduction must be one of {', '.join(self.reductions)}, got "
                               f"{reduction!r}")
        self.reduction = reduction

    def forward(self, y, t):
        return self.function(y, t, reduction=self.reduction)

    toml_keys = ()  # a spec's [loss] keys of its own, besides type, reduction, target and l2
    toml_targets = ()  # the values its target key may take (none: the target has the output's shape)

    @classmethod
    def from_toml(cls, table):
        """The loss a spec's [loss] table declares (its keys checked already)."""
        return cls(reduction=table.data.get("reduction", "mean"))

    @classmethod
    def from_torch(cls, module):
        """The loss that torch.nn loss `module` is."""
        for option, plain in (("weight", None), ("pos_weight", None), ("label_smoothing", 0.0), ("log_target", False)):
            if getattr(module, option, plain) is not plain and getattr(module, option, plain) != plain:
                raise SymPropError(f"{type(module).__name__}: {option} is not supported by symprop yet")
        return cls(reduction=module.reduction)

    def torch_twin(self):
        import torch

        return getattr(torch.nn, self.torch_name)(reduction=self.reduction)

    def describe(self) -> str:
        return f"{type(self).__name__}({'' if self.reduction == 'mean' else f'reduction={self.reduction!r}'})"

    # The loss as a book writes it, in LaTeX (Y the output, T the target), and what the computation adds to it.
    element = ""  # the loss of the elements, summed: what the reduction divides
    per_row = False  # a sum over each row (classes) first: the mean is then over the N rows
    safeguard = ""

    def textbook(self) -> tuple[str, str]:
        """(L = ..., the note on its numerical safeguards) for the document."""
        divisor = {"sum": "", "batchmean": r"\frac{1}{N}",
                   "mean": r"\frac{1}{N}" if self.per_row else r"\frac{1}{|Y|}"}[self.reduction]
        element = self.element
        sign, element = ("-", element[1:].lstrip()) if element.startswith("-") else ("", element)
        return (rf"{sign}{divisor} \sum {element}" if element else "", self.safeguard)


def loss_op(name: str, cls: type[Loss], functional, torch: TorchNames, aten=None):
    """Register a loss: its functional F.<name> and its module, S.<torch.nn class name>; `aten`: its meaning under
    torch's ATen name, which numbers the reduction (aten_loss)."""
    cls.function, cls.torch_name = staticmethod(functional), torch.module
    return defop(name, torch=torch, layer=cls, functional=functional, front={torch.aten[0]: aten} if aten else {})


ATEN_REDUCTIONS = ("none", "mean", "sum")  # ATen's reduction argument, 0, 1 or 2

