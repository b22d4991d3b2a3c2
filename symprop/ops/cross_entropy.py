"""cross_entropy: −Σ_k t_k·log softmax(y)_k per row, over logits, with class-index or probability targets;
F.cross_entropy, nn.CrossEntropyLoss. With one-hot targets, Σ_k t_k = 1 makes its δ the textbook (p − t)/N."""

from __future__ import annotations

import sympy as sp

from ..declare.calls import applied_twice, graph, in_torch, resolved, torch_function
from ..declare.options import integer
from ..declare.tensor import SymbolicTensor, shape_text
from ..declare.trace import ClassIndices, fail, running
from ..errors import SymPropError
from ..graph import Graph, Value
from ..notes import define
from ..shapes import N, size
from .diagonal import diagonal_of
from .loss import ATEN_REDUCTIONS, REDUCTIONS, Loss, loss_op, operands, reduced, same_shape, unsupported
from .onehot import onehot
from .registry import TorchNames
from .softmax import log_softmax_graph
from .sum import reduce_sum
from .take_rows import Rows

define(  # made by reduce_sum, where targets are distributions (one-hot rows or probabilities)
    "sums to one", "Σ_k {0}_k = 1: each row of {0} is a distribution over classes",
    r"$\sum_k {0}_{{nk}} = 1$: each row of ${0}$ is a distribution over the classes. This is why softmax with "
    r"cross-entropy gives $\partial L / \partial z = (p - {0})/N$.")
define("double softmax",
       "the network ends in a softmax, and {0} applies one again: pass it the logits (drop the softmax), as torch's "
       "CrossEntropyLoss expects",
       r"\textbf{{Warning:}} the network ends in a softmax, and \texttt{{{0}}} applies one again: pass it the logits "
       r"(drop the softmax), as torch's \texttt{{CrossEntropyLoss}} expects.", warning=True)


def class_targets_graph(g: Graph, y: Value, t: Value, ignore_index: int | None = None):
    """(targets as a distribution over the last axis of y, the weight of each row, their count): one-hot rows for
    class indices; with `ignore_index`, a row whose target is it weighs 0 (and its one-hot row is class 0's, read
    only times 0), and the count is of the rows that weigh 1, as torch's mean divides by it."""
    if len(t.shape) != len(y.shape) - 1:
        return t.expr, sp.Integer(1), size(y.shape[:-1])
    if ignore_index is None:
        return onehot(g, t, y.shape[-1]).expr, sp.Integer(1), size(t.shape)
    column = g.apply("rearrange", (t,), stem="t_col", shape=t.shape + (1,), split=t.shape,
                     perm=tuple(range(len(t.shape))))  # broadcasts on y
    # Stored, so that it is one factor to simplification: Σ_k kept·onehot_k = kept·1, and the max still cancels.
    kept = g.named(Value(sp.Piecewise((0, sp.Eq(column.expr, ignore_index)), (1, True)), column.shape), "kept")
    classes = onehot(g, Value(sp.Piecewise((0, sp.Eq(t.expr, ignore_index)), (t.expr, True)), t.shape), y.shape[-1])
    count = reduce_sum(g, kept, (), stem="counted").expr
    return classes.expr, kept.expr, count


def class_targets(name, y: Value, t: Value, ignore_index: int):
    """(targets, row weights, row count) for class indices (one axis fewer than y, whose last axis holds the
    classes) or probabilities (y's shape). Token-level targets (with a sequence axis, or flattened from one) and an
    ignore_index other than torch's default skip the rows whose target is ignore_index, as torch does."""
    g = graph()
    source = g.tensors.get(t.expr)
    while source is not None and source.op == "rearrange":  # t.reshape(-1) reads the target too
        source = g.tensors.get(source.operands[0].expr)
    if source is not None and source.op == "target" and getattr(running(), "target_open", False) and \
            t.shape != y.shape[:-1]:  # the target's kind is open, and as the output's shape it is no index
        raise ClassIndices
    if len(t.shape) == len(y.shape) - 1:
        if t.shape != y.shape[:-1]:
            raise fail(f"F.{name}: class-index target {shape_text(t.shape)} does not fit input {shape_text(y.shape)}")
        if y.shape[-1] == N:
            raise fail(f"F.{name} with class-index targets over the batch's own (N, N) scores: make the targets in "
                       "the loss, torch.arange(scores.size(0)) (each row's class its own index)")
        if y.shape[-1] < 2:
            raise fail(f"F.{name} with class-index targets needs at least 2 classes, the input has {y.shape[-1]}")
        masked = ignore_index != -100 or len(t.shape) > 1 or _flattened(g, t)
        if source is not None and source.op == "target":  # the generated code checks that each is a class
            g.class_range = (y.shape[-1], ignore_index if masked else None)
        return class_targets_graph(g, y, t, ignore_index if masked else None)
    same_shape(name, y, t)
    return class_targets_graph(g, y, t)


def _flattened(g: Graph, t: Value) -> bool:
    """A target reshaped from one with a sequence axis: t.reshape(-1), for a token-level loss."""
    tensor = g.tensors.get(t.expr)
    while tensor is not None and tensor.op == "rearrange":
        if len(tensor.operands[0].shape) > 1:
            return True
        tensor = g.tensors.get(tensor.operands[0].expr)
    return False


def classes_last(name, y: Value, t: Value) -> Value:
    """torch's layout, classes on axis 1 ((N, C, d1, ...) with targets (N, d1, ...)), moved to the last axis."""
    if len(y.shape) > 2 and len(t.shape) == len(y.shape) - 1:
        if (y.shape[0], *y.shape[2:]) != t.shape:
            raise fail(f"F.{name}: input {shape_text(y.shape)} has its classes on axis 1, as torch's; the target "
                       f"{shape_text(t.shape)} does not fit it")
        return SymbolicTensor(y).permute(0, *range(2, len(y.shape)), 1).value
    return y


def _smoothing(value) -> bool:
    """Whether a label_smoothing is one torch takes: a number in [0, 1]."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1


def _smoothing_option(value) -> float:
    if not _smoothing(value):
        raise SymPropError(f"must be a number in [0, 1], got {value!r}")
    return float(value)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch's F.cross_entropy over logits (weight: not yet). label_smoothing ε mixes the targets with the uniform
    distribution over the C classes, (1 − ε)·T + ε/C, as torch does."""
    input, target = resolved(input), resolved(target)
    if in_torch(input, target):
        return torch_function(TORCH.functions[0])(input, target, weight, ignore_index=ignore_index,
                                                  reduction=reduction, label_smoothing=label_smoothing)
    unsupported("cross_entropy", weight=weight)
    if not _smoothing(label_smoothing):
        raise fail(f"F.cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if isinstance(target, Rows):
        return own_rows("cross_entropy", input, reduction, label_smoothing)
    y, t = operands("cross_entropy", input, target, reduction, REDUCTIONS + ("none",))
    applied_twice(y, "softmax", "cross_entropy")
    probabilities = len(y.shape) > 2 and t.shape == y.shape
    if probabilities:  # over torch's classes on axis 1: both moved to the last axis
        y, t = (SymbolicTensor(v).permute(0, *range(2, len(v.shape)), 1).value for v in (y, t))
    else:
        y = classes_last("cross_entropy", y, t)
    targets, kept, count = class_targets("cross_entropy", y, t, ignore_index)
    g = graph()
    if targets is t.expr and t.expr in g.tensors and g.tensors[t.expr].op == "target":
        g.tensors[t.expr].simplex_axis = len(t.shape) - 1  # probabilities: each row sums to 1
    if label_smoothing:
        smoothing = sp.Rational(str(label_smoothing))  # 0.1 as 1/10: exact, and as a book writes it
        targets = (1 - smoothing) * targets + smoothing / y.shape[-1]
    log_p = log_softmax_graph(g, y, "p")
    return reduced(y, -kept * targets * log_p.expr, reduction, per_sample=True, count=count)


def own_rows(name: str, input, reduction, label_smoothing=0.0, logits: bool = True) -> SymbolicTensor:
    """F.cross_entropy(scores, torch.arange(n)) of (n, n) scores (F.nll_loss of their log-probabilities, `logits`
    False), each row's class its own index (InfoNCE, CLIP's loss over a batch's similarities): −log p_ii, the diagonal
    of −log softmax."""
    y, _ = operands(name, input, input, reduction, REDUCTIONS + ("none",))
    if y.shape != (N, N):
        raise fail(f"F.{name} with torch.arange(n) as the targets takes (n, n) scores of the batch, got "
                   f"{shape_text(y.shape)}")
    log_p = log_softmax_graph(graph(), y, "p") if logits else y
    minus_log_p = SymbolicTensor(Value(-log_p.expr, y.shape))
    each = diagonal_of(minus_log_p).reshape(-1, 1)
    if label_smoothing:  # (1 − ε) of the row's own class, ε spread evenly over all n
        smoothing = sp.Rational(str(label_smoothing))
        each = each * (1 - smoothing) + minus_log_p.mean(-1, keepdim=True) * smoothing
    return reduced(each.value, each.value.expr, reduction, per_sample=True)


class CrossEntropyLoss(Loss):
    """Over logits; targets are class indices (`"index"`) or probabilities (`"probs"`). Outputs (batch, sequence,
    classes) with targets (batch, sequence) are a loss per token: the mean over the tokens whose target is not
    `ignore_index` (padding)."""

    kind = "cross_entropy"
    target_domain = "simplex"
    per_row = True
    torch_layout = False  # torch's own (from_torch): an output (N, C, d1, ...) has its classes on axis 1
    safeguard = (r"The code shifts the row maximum out before $\exp$ (the log-sum-exp), so that no $\exp$ "
                 r"overflows; it cancels from the softmax, so the formulas below are unchanged by it.")

    @property
    def element(self):
        return r"-T \odot \log \operatorname{softmax}(Y)" if self.target == "probs" else \
            r"-\log \operatorname{softmax}(Y)_{n, t_n}"

    def __init__(self, reduction: str = "mean", target: str = "index", ignore_index: int = -100,
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        if target not in ("index", "probs"):
            raise SymPropError(f"target must be index or probs for cross_entropy, got {target!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise SymPropError(f"ignore_index must be an integer, got {ignore_index!r}")
        if not _smoothing(label_smoothing):
            raise SymPropError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        self.target, self.ignore_index, self.label_smoothing = target, ignore_index, label_smoothing

    @classmethod
    def from_torch(cls, module):
        if getattr(module, "weight", None) is not None:
            raise SymPropError(f"{type(module).__name__}: weight is not supported by symprop yet")
        return cls(reduction=module.reduction, ignore_index=module.ignore_index,
                   label_smoothing=getattr(module, "label_smoothing", 0.0))

    toml_keys, toml_targets = ("ignore_index", "label_smoothing"), ("index", "probs")

    @classmethod
    def from_toml(cls, table):
        return cls(reduction=table.data.get("reduction", "mean"), target=table.data.get("target") or "index",
                   ignore_index=table.get("ignore_index", integer, -100),
                   label_smoothing=table.get("label_smoothing", _smoothing_option, 0.0))

    def forward(self, y, t):
        options = dict(ignore_index=self.ignore_index, reduction=self.reduction)
        if getattr(self, "label_smoothing", 0.0):
            options["label_smoothing"] = self.label_smoothing
        if len(y.shape) > 2 and not self.torch_layout:  # symprop's: the classes last, a loss per token
            rows = y.reshape(-1, y.shape[-1])
            return self.function(rows, t.reshape(-1) if self.target == "index" else t.reshape(-1, y.shape[-1]),
                                 **options)
        return self.function(y, t, **options)

    def torch_twin(self):
        return None  # forward runs in torch itself: torch's own function, on the same reshaped tensors

    def describe(self) -> str:
        options = [f"reduction={self.reduction!r}"] * (self.reduction != "mean") + \
            [f"target={self.target!r}"] * (self.target != "index" and type(self) is CrossEntropyLoss) + \
            [f"ignore_index={self.ignore_index}"] * (self.ignore_index != -100) + \
            [f"label_smoothing={self.label_smoothing}"] * bool(getattr(self, "label_smoothing", 0.0))
        return f"{type(self).__name__}({', '.join(options)})"


TORCH = TorchNames(("torch.nn.functional.cross_entropy",), (), "CrossEntropyLoss",
                   ("aten.cross_entropy_loss.default",))
loss_op("cross_entropy", CrossEntropyLoss, cross_entropy, TORCH,
        aten=lambda input, target, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0: cross_entropy(
            input, target, weight, ignore_index, ATEN_REDUCTIONS[reduction], label_smoothing))
