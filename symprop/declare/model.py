"""Stage 1, declare: a network, its loss and its inputs, which is what symprop derives.

The network is any Module: a Sequential, a subclass with its own forward, or the network of a
TOML spec. Tracing it (`Model.trace`) runs forward on symbolic inputs and the loss on its output and
a symbolic target, which builds the tensor graph of stage 2. Nothing here knows the shape of the
network beyond what the trace finds.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import keyword
import unicodedata
from dataclasses import dataclass

import sympy as sp

from ..errors import SymPropError
from ..graph import Graph, Tensor, Value
from ..graph.ir import ids_bound
from ..ops.loss import Loss
from ..ops.registry import helpers
from ..shapes import N
from .module import Module, Sequential
from .tensor import Parameter, SymbolicTensor, shape_text
from .trace import ClassIndices, GraphTrace, interpret, traceback_location

TARGETS = ("same", "index", "probs")  # the kinds of target; a loss module's own, or Model(target=...)
MAX_LAYERS = 128  # derivation grows linearly, 20-60 ms a layer: this keeps every spec under 10 s
MAX_CUSTOM_OPERATIONS = 2000  # in all the custom expressions of a model together, for the same reason
MAX_TENSORS = 1000  # in a traced forward and loss: 16 encoder layers make 707, 127 MLP layers 198
# Names the generated functions use themselves: inputs may not take them, and no value is given them.
RESERVED = {"N", "t", "params", "np", "torch", "math", "float", "dict", "len", "range", "grads", "state", "loss",
            "self", "forward", "check_shapes", "loss_and_gradients", "sgd_step", "adam_step", "adamw_step",
            "init_params", "holds", "start"}


def reserved() -> set[str]:
    """RESERVED, and the names of the helpers that ops define in generated modules."""
    return RESERVED | helpers()


MAX_NAME = 100  # characters: NAME_numpy.py and its hidden temporary stay well within a file name's 255 bytes


def check_name(name) -> str:
    """A model's name names its files and modules: a Python identifier, as Unicode normalizes it."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SymPropError(f"must be a Python identifier, got {name!r}", "name")
    if len(name) > MAX_NAME:
        raise SymPropError(f"is {len(name)} characters long; the limit is {MAX_NAME}", "name")
    if unicodedata.normalize("NFKC", name) != name:  # Python would import 'ﬁle' as 'file'
        raise SymPropError(f"{name!r} reads as {unicodedata.normalize('NFKC', name)!r} once Python normalizes it; "
                           "use that spelling", "name")
    return name


@dataclass
class Lowered:
    """A traced model: the graph, and which of its tensors are the inputs, target, output, loss and parameters."""

    graph: Graph
    inputs: dict[str, Tensor]  # in the declared order
    t: Tensor
    output: Value  # the network's output, before the loss
    loss: Value  # a scalar
    params: dict[str, Tensor]  # state_dict key -> tensor, in state_dict order
    network_names: set[str]  # names of the network's own values, before the loss
    layers: list = None  # (path, module, output shape) of each call of the network's layers, in order
    buffers: dict = None  # state_dict key -> tensor, of the running statistics read as inputs (eval mode)


class Model:
    """A network, its loss and its inputs: what symprop derives.

    `inputs`: the width of a single input x, or {name: width or shape} for named inputs in the order
    forward takes them (a width w is a (batch, w) input, or (batch, sequence, w) with `sequence`; a
    shape (a, b) is a (batch, a, b) input). `loss`: a loss module, or any callable of (output, target)
    built from symprop's vocabulary; its target has the output's shape unless the loss module says
    otherwise (class indices, for a loss of classes), or `target="index"` does, for a loss function that
    takes class indices; `target_shape` (from_torch's, of its example target): the target's shape after the batch
    axis, where it is known."""

    def __init__(self, net, loss, name: str = "model", inputs=None, source: str = "", sequence: int | None = None,
                 target: str | None = None, target_shape: tuple | None = None):
        self.net = net if isinstance(net, Module) else Sequential(*net)
        self.loss = loss
        self._target = target
        self._target_shape = target_shape
        self.name = name
        self.source = source  # where it was declared, for generated headers
        self.script = "" if source else _script()  # the Python file whose code declared it, where there is one
        self.sequence = sequence
        check_name(name)
        if not isinstance(loss, Loss) and (isinstance(loss, Module) or not callable(loss)):
            raise SymPropError(f"{loss!r} is not a symprop loss, nor a function of (output, target)", "loss")
        if target is not None and target not in TARGETS:
            raise SymPropError(f"must be one of {', '.join(TARGETS)}, got {target!r}", "target")
        if target is not None and isinstance(loss, Loss) and target != loss.target:
            if target not in getattr(loss, "toml_targets", ()):
                raise SymPropError(f"{type(loss).__name__} takes {loss.target!r} targets; leave target out", "target")
            self.loss = copy.copy(loss)  # a loss that reads either kind of target (class indices or probabilities)
            self.loss.target = target
        if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1):
            raise SymPropError(f"must be a positive integer, got {sequence!r}", "sequence")
        self._check_size()
        self.inputs = self._first_width() if inputs is None else inputs
        self.input_shapes = self._input_shapes(self.inputs)
        lowered = self.trace()  # every check of shapes and names happens here, at declaration
        self.output_shape = ("batch",) + lowered.output.shape[1:]
        # inputs of integer ids (an embedding's tokens): {name: how many ids there are, or a list: in each column}
        self.index_ranges = {name: ids_bound(t) for name, t in lowered.inputs.items()
                             if t.index_range or t.column_ranges}
        self.mask_inputs = [name for name, t in lowered.inputs.items() if t.boolean]  # inputs of booleans
        self.padding_inputs = [name for name, t in lowered.inputs.items() if t.padding]  # key padding masks among them
        self.integer_inputs = [name for name, t in lowered.inputs.items() if t.integer]  # ids, or 0/1 masks from torch
        self.target_shape = ("batch",) + lowered.t.shape[1:]
        self.class_range = lowered.graph.class_range  # (classes, ignore_index skipped or None) of index targets
        if self.class_range and self._target is None:  # a loss read the target as classes, in the shape it was given
            self._target = "index"
        self.simplex_axis = lowered.t.simplex_axis  # the target's rows along it are probabilities, as δ = p − t assumes

    # -- checks --------------------------------------------------------------------------------
    def _check_size(self):
        modules = [module for _, module in self.net.named_modules()]
        if len(modules) - 1 > MAX_LAYERS:
            raise SymPropError(f"{len(modules) - 1} layers, more than the {MAX_LAYERS} symprop derives", "layers")
        layers = self.net.layers if isinstance(self.net, Sequential) else modules  # a layer twice counts twice
        for kind in {type(module) for module in layers if module.most_in_a_model}:  # each costly to derive
            count = sum(type(module) is kind for module in layers)
            if count > kind.most_in_a_model:
                raise SymPropError(f"{count} {kind.kind} layers, more than the {kind.most_in_a_model} symprop "
                                   "derives in reasonable time", "layers")
        custom = [m.expr for m in (*modules, self.loss) if isinstance(getattr(m, "expr", None), sp.Basic)]
        operations = sum(sp.count_ops(expr) for expr in custom)
        if operations > MAX_CUSTOM_OPERATIONS:
            raise SymPropError(f"the custom expressions have {operations} operations in all, more than the "
                               f"{MAX_CUSTOM_OPERATIONS} symprop derives in reasonable time", "layers")

    def _first_width(self) -> int:
        for _, module in self.net.named_modules():
            for attribute in ("in_features", "normalized_shape", "d_model"):
                if hasattr(module, attribute):
                    return getattr(module, attribute)
        raise SymPropError("inputs is not given and there is no Linear layer to take it from")

    def _input_shapes(self, inputs) -> dict[str, tuple]:
        given = {"x": inputs} if isinstance(inputs, int) and not isinstance(inputs, bool) else inputs
        if not isinstance(given, dict) or not given:
            raise SymPropError(f"must be a width, or {{name: width or shape}}, got {inputs!r}", "inputs")
        shapes = {}
        for name, dims in given.items():
            where = f"inputs.{name}" if isinstance(inputs, dict) else "inputs"
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or \
                    name.startswith("_") or name in reserved():
                raise SymPropError(f"{name!r} cannot name an input: use an identifier other than "
                                   f"{', '.join(sorted(reserved()))}", "inputs")
            dims = (dims,) if isinstance(dims, int) and not isinstance(dims, bool) else dims
            if not isinstance(dims, (tuple, list)) or \
                    any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
                raise SymPropError(f"must be a positive integer or a tuple of them, got {dims!r}", where)
            sequence = (self.sequence,) if self.sequence and len(dims) == 1 else ()
            shapes[name] = ("batch", *sequence, *dims)
        return shapes

    # -- the trace -----------------------------------------------------------------------------
    def trace(self, book: bool = False, running_inputs: bool = False) -> Lowered:
        """Run forward and the loss on symbolic tensors: the graph that symprop derives (`book`: as a book writes
        it, without the code's numerical safeguards, for the document; `running_inputs`: in eval mode, each batch
        norm that tracks running statistics normalizing by them, read as inputs: Lowered.buffers)."""
        graph = Graph(limit=MAX_TENSORS, book=book)
        graph._taken |= reserved()
        parameters = dict(self.net.named_parameters())
        modules = dict(self.net.named_modules())
        trace = GraphTrace(graph, parameters, modules, loss=self.loss if isinstance(self.loss, Module) else None)
        trace.running_inputs = running_inputs
        # open: a loss function's use of the target decides its kind, unless the example target's shape did
        trace.target_open = self._target is None and not isinstance(self.loss, Loss) and self._target_shape is None
        inputs = {name: graph.add(name, (N, *shape[1:]), "input", exact=True)
                  for name, shape in self.input_shapes.items()}
        try:
            with interpret(trace):
                output, t, loss, network_names = self._traced(graph, inputs)
        except ClassIndices:  # a loss function that hands its target to a loss of class indices takes them
            self._target = "index"
            return self.trace(book, running_inputs)
        graph.limit = None  # the derivation adds the backward pass's tensors
        lowered = Lowered(graph, {name: graph.tensor(v.expr) for name, v in inputs.items()}, graph.tensor(t.expr),
                          output, loss, {}, network_names)
        if not parameters:
            raise SymPropError("the model has no parameters, so there is no gradient to derive", "model")
        for key in parameters:
            if key not in trace.params:
                raise SymPropError(f"parameter {key} is never used in forward or the loss", "model")
        for name, value in inputs.items():
            if value.expr not in trace.read:
                raise SymPropError(f"input {name} is never used in forward", "inputs")
        lowered.params = {key: graph.tensor(trace.params[key].expr) for key in parameters}
        lowered.buffers = {key: graph.tensor(value.expr) for key, value in trace.buffers.items()}
        top = [call for call in trace.calls if call[0] and "." not in call[0]]  # the network's own children
        lowered.layers = getattr(self.net, "calls", None) or top or \
            [call for call in trace.calls if call[0] == "" and call[1] is self.net]  # from torch: its torch layers
        return lowered

    def _traced(self, graph: Graph, inputs: dict):
        """forward, then the loss (this function's name marks where the user's code begins, for error lines)."""
        try:
            output = self.net(*(SymbolicTensor(v) for v in inputs.values()))
            if isinstance(output, Parameter):
                output = output.resolve()
            if not isinstance(output, SymbolicTensor):
                raise SymPropError(f"forward returned {_what(output)}, not a tensor", "forward")
            if len(output.shape) < 2 or output.shape[0] != N:
                hint = "; return it as (N, 1), and squeeze it in the loss" if output.shape == (N,) else ""
                raise SymPropError(f"forward returned shape {shape_text(output.shape)}: the output keeps the batch "
                                   f"axis and one more, (batch, outputs){hint}", "forward")
            network_names = {t.name for t in graph.tensors.values()} | set(graph.labels.values())
            kind = self.target_kind
            shape = output.shape[:-1] if kind == "index" else output.shape
            if self._target_shape is not None:  # as the example target has it
                shape = (N, *self._target_shape)
            if kind == "index" and output.shape[-1] < 2:
                raise SymPropError(f"{type(self.loss).__name__} with class-index targets needs at least 2 outputs, "
                                   f"the network has {output.shape[-1]}", "loss")
            t = graph.add("t", shape, "target", exact=True)
            try:
                loss = self.loss(output, SymbolicTensor(t))
            except SymPropError as error:
                raise (error if error.where else error.at("loss")) from None
            if isinstance(loss, Parameter):
                loss = loss.resolve()
            if not isinstance(loss, SymbolicTensor):
                raise SymPropError(f"the loss returned {_what(loss)}, not a tensor", "loss")
            if loss.shape != ():
                raise SymPropError(f"the loss must be a number, got shape {shape_text(loss.shape)}: reduce it with "
                                   ".mean() or .sum()", "loss")
        except (SymPropError, ClassIndices):
            raise
        except RecursionError:
            raise SymPropError("the model nests too deeply to trace", "forward") from None
        except Exception as error:  # the user's own code failed: one line, at its line
            where = traceback_location(error) or "forward"
            raise SymPropError(f"{type(error).__name__}: {error}", where) from None
        return output.value, t, graph.label(loss.value, "L"), network_names

    def digest(self, lowered: Lowered | None = None) -> str:
        """A fingerprint of the declaration: names, shapes, initializations and what forward and the loss compute
        (the traced graph; `lowered`, if given, must not be derived yet). Generated files record it, and
        `symprop check` compares it, to notice stale code."""
        lowered = lowered or self.trace()
        parts = [self.name, repr(self.input_shapes), repr(self.target_shape), self.target_kind,
                 repr([(key, p.shape, p.init) for key, p in self.net.named_parameters()]),
                 sp.srepr(lowered.output.expr), sp.srepr(lowered.loss.expr)]
        for t in lowered.graph.tensors.values():
            parts.append(repr((t.name, t.op, t.shape, t.spec, t.axes, t.key, t.bounds, t.split, t.perm,
                               t.index_range, t.boolean)) + ";".join(sp.srepr(op.expr) for op in t.operands) +
                         (repr(t.data) if t.data else "") + (" padding" if t.padding else "") +
                         (repr(t.column_ranges) if t.column_ranges else ""))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    # -- what the trace found ------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, tuple[int, ...]]:
        """state_dict keys and shapes, in state_dict order."""
        return {key: p.shape for key, p in self.net.named_parameters()}

    @property
    def random_inputs(self) -> dict[str, tuple]:
        """The inputs that forward draws at random (from torch: a dropout's mask, noise), {name: ("keep", p) for 1
        with probability p, else 0 | ("normal",) | ("uniform",)}: train() draws them afresh for every batch."""
        return self.net.random_kinds() if hasattr(self.net, "random_kinds") else {}

    def source_params(self) -> dict | None:
        """A model from torch: its source module's parameters, {key: float64 array}; else None."""
        return self.net.source_params() if hasattr(self.net, "source_params") else None

    @property
    def tied_keys(self) -> dict[str, str]:
        """{state_dict key: the key in parameters} for a parameter held under several keys."""
        return self.net.tied_keys()

    @property
    def frozen_keys(self) -> list[str]:
        """The parameters the source module holds frozen (requires_grad=False): their gradients are derived as any
        other's, and the generated optimizers and Module leave them as they are, as torch's optimizers do."""
        return [key for key, p in self.net.named_parameters() if getattr(p, "frozen", False)]

    @property
    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        """The source module's buffers, by state_dict key: the generated Module keeps them so state dicts round-trip."""
        return self.net.buffer_shapes()

    @property
    def initializations(self) -> dict[str, tuple]:
        """How init_params draws each parameter (torch's default for built-in layers): ("uniform", bound) for
        U(-bound, bound), ("normal", std), ("ones",) or ("zeros",)."""
        return {key: p.init for key, p in self.net.named_parameters()}

    @property
    def outputs(self) -> int:
        """The width of the network's output (its last axis)."""
        return self.output_shape[-1]

    @property
    def input_shape(self) -> tuple:
        """The first input's shape, with "batch" for the batch axis."""
        return next(iter(self.input_shapes.values()))

    @property
    def target_kind(self) -> str:
        """"same" (the output's shape), "index" (class indices: the output's shape without its last axis) or
        "probs" (the output's shape, each row a distribution)."""
        return self.loss.target if isinstance(self.loss, Loss) else self._target or "same"

    def describe_loss(self) -> str:
        if isinstance(self.loss, Module):
            return self.loss.describe()
        name = getattr(self.loss, "__name__", type(self.loss).__name__)
        return "a loss written in Python" if name == "<lambda>" else f"the loss {name}"

    def __repr__(self):
        return f"Model({self.net.describe()}, {self.describe_loss()}, name={self.name!r})"


def _script() -> str:
    """The user's file that is declaring a model (the first caller outside symprop), relative to the current folder
    where it lies under it; "" in a notebook or an interpreter."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]
    for frame in inspect.stack()[2:]:
        path = Path(frame.filename)
        if frame.filename.startswith("<") or package in path.resolve().parents:
            continue
        if "site-packages" in path.parts or "torch" in path.parts:
            continue
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return path.name
    return ""


def _what(thing) -> str:
    if thing is None:
        return "None"
    if inspect.isfunction(thing):
        return "a function"
    return f"a {type(thing).__name__}"


__all__ = ["Lowered", "Model", "check_name"]
