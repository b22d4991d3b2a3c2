"""From torch by torch.export: a torch.nn.Module as its user wrote it (sizes read in Python, asserts, buffers, loops
over positions), exported on example inputs and read op by op into a symprop Model.

torch.export gives the forward as a graph of ATen operations, with the batch axis left free (`torch.export.Dim`),
every parameter and buffer under its state_dict key and every operation under the user's file:line. Each ATen
operation is found in the registry (`registry.by_aten`) and replayed on symbolic tensors; an operation that reads
only constants (a mask built from sizes, a buffer) is computed by torch itself, once, and its result is a constant of
the derivation. The same replay runs on torch tensors, which is the reference that `symprop check` compares with.
"""

from __future__ import annotations

import inspect
import re
import sysconfig
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import sympy as sp

from ..errors import SymPropError
from ..notes import define
from ..ops.loss import Loss
from ..ops.registry import by_aten, by_module, is_loss, layers, meaning
from .model import Model
from .module import Module
from .tensor import TORCH_FUNCTIONS, Parameter, SymbolicTensor
from .torch_eval import require_torch
from .trace import ClassIndices, GraphTrace, TorchRun, Unread, running


def exported_model(module, loss, example_inputs: tuple, example_target, name: str = "model", target: str | None = None,
                   source: str = "", batch_axis: int | None = None) -> Model:
    """The symprop Model of `module` exported on `example_inputs` (a tuple; the batch on `batch_axis` of each), and
    of `loss`: a torch loss module, or a function of (output, target) written with torch operations, exported on the
    module's output and `example_target`."""
    torch = require_torch("from_torch")
    if not isinstance(module, torch.nn.Module):
        raise SymPropError(f"expected a torch.nn.Module, got {type(module).__name__}", "module")
    if isinstance(example_inputs, (tuple, list)):
        nested = [i for i, x in enumerate(example_inputs) if isinstance(x, (tuple, list))]
        if nested:
            raise SymPropError(f"example_inputs[{nested[0]}] is a {type(example_inputs[nested[0]]).__name__}: "
                               "symprop takes each input of forward as one tensor (an LSTM's (h, c) as two inputs of "
                               "forward)", "example_inputs")
    if batch_axis is None:  # torch's sequence-first layers take (sequence, batch, ...): read it so, else batch first
        arguments = (module, loss, example_inputs, example_target, name, target, source)
        guessed = _guessed_batch_axis(module, example_inputs)
        if guessed is not None:
            return exported_model(*arguments, batch_axis=guessed)
        try:
            return exported_model(*arguments, batch_axis=1)
        except SymPropError as sequence_first:  # a batch-first forward that transposes for such a layer itself
            try:
                return exported_model(*arguments, batch_axis=0)
            except SymPropError as batch_first:
                if str(batch_first) == str(sequence_first):  # not a matter of the batch's axis
                    raise
                raise SymPropError(sequence_first.message + " (read sequence first, as its layers with batch_first="
                                   "False take it; give batch_axis=0 for a forward that takes the batch first)",
                                   sequence_first.where) from None
    if batch_axis not in (0, 1):
        raise SymPropError(f"must be 0 (batch first) or 1 (sequence first), got {batch_axis!r}", "batch_axis")
    example_inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not example_inputs or not all(torch.is_tensor(x) and x.dim() > batch_axis for x in example_inputs):
        where = "first" if batch_axis == 0 else "second (batch_axis=1)"
        raise SymPropError(f"give one example tensor per input of forward, each with the batch on its {where} axis",
                           "example_inputs")
    for path, sub in module.named_modules():  # torch's decomposition of these leaves that dropout out: refused
        if isinstance(sub, torch.nn.RNNBase) and sub.training and sub.dropout and sub.num_layers > 1:
            raise SymPropError(f"nn.{type(sub).__name__}(dropout={sub.dropout}) in training mode is not supported: "
                               "its dropout between layers (use eval(), or one layer per module with nn.Dropout "
                               "between them)", path or "module")
        if isinstance(sub, torch.nn.modules.conv._ConvNd) and sub.padding_mode != "zeros":  # torch pads it by indexing
            raise SymPropError(f"nn.{type(sub).__name__}: padding_mode {sub.padding_mode!r} is not supported by "
                               "symprop (only 'zeros')", path or "module")
    # one tensor given twice (idx as its own targets) would be one input to torch.export: each its own copy
    example_inputs = tuple(x.clone() if any(x is y for y in example_inputs[:i]) else x
                           for i, x in enumerate(example_inputs))
    program = _export(module, example_inputs, "forward", batch_axis)
    net = Exported(program, module, batch_axis)
    names = [spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    inputs = {n: tuple(d for a, d in enumerate(x.shape) if a != batch_axis)
              for n, x in zip(names, example_inputs, strict=True)}
    inputs.update(net.random_inputs(set(inputs)))
    before = {key: (value, value.detach().clone()) for key, value in module.named_buffers()}
    try:
        with torch.no_grad():
            output = module(*example_inputs)
    except Exception as error:  # the model itself fails on its examples: one line
        text = " ".join(str(error).split())[:200]
        raise SymPropError(f"forward fails on the example inputs: {type(error).__name__}: {text}",
                           "example_inputs") from None
    _buffers_changed_refused(module, before)
    if _of_one(loss):  # forward computes its own loss, of its last input: loss(out) picks it from the outputs
        if batch_axis:
            raise SymPropError("a model that computes its own loss is read batch first only", "batch_axis")
        if example_target is not None:
            raise SymPropError("a loss of forward's output alone reads its targets from forward's inputs: leave "
                               "example_target out", "example_target")
        net.split_at(*_logits_and_loss(output, loss, example_inputs[0].shape[0],
                                        defined_at(type(module).forward, "forward") or "forward"))
        del inputs[names[-1]]

        def own_loss(y, t):
            return net.loss_of_forward(y, t)

        own_loss.__name__ = f"its forward computes of {names[-1]}"  # the document's "GPT with the loss ..."
        targets = example_inputs[-1]  # its shape, not one guessed from the output's: targets.view(B*T) reads it
        shape = tuple(targets.shape[1:]) if torch.is_tensor(targets) and targets.dim() > 0 else None
        return Model(net, own_loss, name=name, inputs=inputs, target=target, source=source, target_shape=shape)
    net.read_first = isinstance(output, tuple)
    net.output_axis(0)  # the output keeps the batch on an axis of its own (not merged with time: view(-1, V))
    symprop_loss = _loss(loss, module, output, example_target, net)
    target_shape = None
    if torch.is_tensor(example_target) and example_target.dim() > 0:  # the target's shape, but for its batch axis
        axis = _target_axis(net, example_target)
        target_shape = tuple(d for a, d in enumerate(example_target.shape) if a != axis)
        if target is None and not example_target.is_floating_point() and not isinstance(symprop_loss, Loss):
            target = "index"  # integers, which a loss function reads as class indices (ids)
    return Model(net, symprop_loss, name=name, inputs=inputs, target=target, source=source, target_shape=target_shape)


def _guessed_batch_axis(module, example_inputs) -> int | None:
    """Where the batch of a model's inputs is: first, unless it has layers with batch_first=False (torch's sequence
    first layers take (sequence, batch, ...)); then where the batch of what those layers are given comes from: the
    inputs' second axis (a sequence-first model) or their first (a batch-first forward that transposes for them).
    None where the examples cannot tell (their first two axes of one size: refused), or the layers take no tensor."""
    torch = require_torch("from_torch")
    layers = [m for m in module.modules() if getattr(m, "batch_first", True) is False]
    if not layers:
        return 0
    example_inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    inputs = [x for x in example_inputs if torch.is_tensor(x) and x.dim() >= 2]
    if not inputs:
        return None
    given = []

    def record(layer, args):  # the batch size of the layer's input: its second axis
        if args and torch.is_tensor(args[0]) and args[0].dim() >= 2:
            given.append(args[0].shape[1])

    hooks = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            module(*example_inputs)
    except Exception:  # the trace says what fails, in one line
        return None
    finally:
        for hook in hooks:
            hook.remove()
    first, second = inputs[0].shape[0], inputs[0].shape[1]
    if given and first == second:
        raise SymPropError(f"the batch axis of the examples is ambiguous: the model has layers with batch_first=False, "
                           f"and the first two axes of its example input have one size ({first}); give batch_axis=0 "
                           "(batch first) or 1 (sequence first), or examples whose first two axes differ",
                           "example_inputs")
    if given and set(given) == {second}:
        return 1
    if given and set(given) == {first}:
        return 0
    return None


def _target_axis(net, example_target) -> int:
    """The target's batch axis: the output's (a sequence-first model's per-token targets (T, N); a classifier that
    reads a recurrent layer's last state, (N, C), batch first), where the target has that many axes."""
    axis = net.output_axis(0)
    return axis if example_target.dim() > axis else 0


def _of_one(loss) -> bool:
    """Whether a loss function takes one argument (forward's output) rather than (output, target)."""
    import inspect

    if not callable(loss) or type(loss).__module__.startswith("torch"):
        return False
    try:
        parameters = [p for p in inspect.signature(loss).parameters.values() if p.default is p.empty]
    except (TypeError, ValueError):
        return False
    return len(parameters) == 1


def _logits_and_loss(output, loss, batch: int, where: str) -> tuple[int, int]:
    """(the position of the network's output, of its loss) among forward's outputs, as torch.export flattens them
    (`where`: forward's place in the user's code)."""
    from torch.utils._pytree import tree_flatten

    flat = tree_flatten(output)[0]
    chosen = loss(output)
    found = [i for i, x in enumerate(flat) if x is chosen]
    if not found or chosen.dim() != 0:
        raise SymPropError("loss(out) must return the loss that forward computes: one of its outputs, a number", "loss")
    logits = [i for i, x in enumerate(flat) if i != found[0] and getattr(x, "dim", lambda: 0)() and x.shape[0] == batch]
    if not logits:
        merged = [x for i, x in enumerate(flat) if i != found[0] and getattr(x, "dim", lambda: 0)() and
                  x.shape[0] % batch == 0 and x.shape[0] > batch]
        if merged:  # logits.view(B*T, C) before the loss, returned as viewed
            shape = tuple(merged[0].shape)
            raise SymPropError(f"forward returns its output as {shape}, the batch of {batch} merged with the axis "
                               f"after it (logits.view(B*T, C)); return it with the batch axis apart, (B, T, C), and "
                               "view it for the loss only", where)
        raise SymPropError("forward returns no output with the batch axis beside its loss", where)
    return logits[0], found[0]


def torch_loss(loss):
    """The symprop loss of a torch loss module (one of torch.nn's); None for a loss function, or a loss module that
    symprop does not have, which is read as the function its forward is (a FocalLoss(nn.Module) of one's own)."""
    torch = require_torch("from_torch")
    op = by_module(type(loss).__name__) if isinstance(loss, torch.nn.Module) else None
    if op is not None and is_loss(op.layer_class) and type(loss) is getattr(torch.nn, type(loss).__name__):
        return op.layer_class.from_torch(loss)
    if isinstance(loss, torch.nn.Module) and any(p.requires_grad for p in loss.parameters()):
        raise SymPropError(f"{type(loss).__name__} has parameters of its own; symprop derives the gradients of the "
                           "network's alone: pass a loss without parameters", "loss")
    if not callable(loss):
        losses = [name for name, cls in layers().items() if is_loss(cls) and cls.from_torch]
        raise SymPropError(f"{type(loss).__name__} is not a loss symprop has; pass a torch.nn loss "
                           f"({', '.join(losses)}) or a function of (output, target)", "loss")
    return None


def loss_holder(loss, module):
    """A loss function as a torch module that holds the network (net), so that a tracer sees the network's parameters
    that the loss reads by their keys."""
    torch = require_torch("from_torch")

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module

        def forward(self, y, t):
            return loss(y, t)

    return Holder()


def _loss(loss, module, output, example_target, net: Exported):
    torch = require_torch("from_torch")
    known = None if net.batch_axis else torch_loss(loss)  # sequence first: the loss as torch computes it, exported
    if known is not None:  # as torch reads its arguments: classes on axis 1, probabilities where t is floats
        known.torch_layout = True
        if torch.is_tensor(example_target) and example_target.is_floating_point() and \
                "probs" in getattr(known, "toml_targets", ()) and \
                getattr(output, "shape", None) == example_target.shape:
            known.target = "probs"
        return known
    if net.batch_axis and isinstance(loss, torch.nn.Module):
        torch_loss(loss)  # one that symprop lacks is refused as such
    if not torch.is_tensor(example_target):
        raise SymPropError("a loss function is exported on an example target: give example_target", "example_target")
    holder = loss_holder(loss, module)
    outputs = output if isinstance(output, tuple) else (output,)
    if not all(torch.is_tensor(y) for y in outputs):
        hint = ("; a model that computes its own loss when given targets ((logits, None) without them): give the "
                "targets as forward's last example input, and lambda out: out[1] as the loss") \
            if any(y is None for y in outputs) else ""
        raise SymPropError(f"forward returns {_returned_kind(output)}: symprop reads a tensor, or a tuple of "
                           f"them{hint}", defined_at(type(module).forward, "forward") or "forward")
    axes = (*(net.output_axis(i) for i in range(len(outputs))), _target_axis(net, example_target))
    example = (tuple(y.detach() for y in outputs) if isinstance(output, tuple) else output.detach(), example_target)
    where = defined_at(loss) or "loss"  # a loss module of torch's: its code is not the user's
    replay = Exported(_export(holder, example, "loss", axes, where), holder, axes)
    # torch.export's program of the holder takes every parameter and buffer of the network; those the loss never
    # reads must not count as read, or the loss would seem to read parameters and lose its Gauss–Newton product
    replay.where, replay.reads_only_used = where, True
    if replay.random:
        raise SymPropError(f"{aten_name(replay.random[0].target)}: a loss that draws random numbers is not "
                           "supported", location(replay.random[0], where))

    def replayed(y, t):  # the network's parameters that the loss reads (net.<key>) are the Model's own
        return replay.replay((y, *net.more_outputs, t), {f"net.{key}": p for key, p in every_parameter(net).items()})

    replayed.__name__ = getattr(loss, "__name__", "loss")
    return replayed


def _as_signature_reads(module, args: tuple, free) -> tuple:
    """The free axes of each argument, grouped as forward's signature takes them: torch.export wants the arguments
    that `forward(self, x, *rest)` gathers in `rest` given as one tuple."""
    shapes, rest = [], list(args)
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # no signature to read: one argument each
        parameters = []
    for parameter in parameters:
        if not rest:
            break
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            shapes.append(tuple(free(a) for a in rest))
            rest = []
            break
        shapes.append(free(rest.pop(0)))
    return tuple(shapes) + tuple(free(a) for a in rest)


def _export(module, args: tuple, what: str, axes=0, where: str = ""):
    """torch.export's program of module(*args), with the batch axis (`axes`: one for every argument, or one each) left
    free; `where` names a refused node whose stack trace has no line of the user's (a loss function's)."""
    require_torch("from_torch")
    from torch.export import Dim, export

    batch = Dim("batch")
    axes = iter(axes if isinstance(axes, tuple) else (axes,) * len(args))

    def free(arg):  # each tensor's batch axis, through a tuple of tensors too (None: a tensor without one)
        if isinstance(arg, tuple):
            return tuple(free(a) for a in arg)
        axis = next(axes)
        return None if axis is None else {axis: batch}

    try:
        with _masks_taken_as_given(), _momentum_given(module), warnings.catch_warnings(), _torch_logs_quiet():
            # torch's own notes on its recurrent layers' weights and on its pytree internals, not the user's code
            warnings.filterwarnings("ignore", "The tensor attributes", UserWarning)
            warnings.filterwarnings("ignore", ".*LeafSpec", FutureWarning)
            program = _lowered(export(module, args, dynamic_shapes=_as_signature_reads(module, args, free)))
    except Exception as error:  # torch's own explanation, in one line
        text = " ".join(str(error).split())
        # torch's message closes what it never opened ("...must match the size of tensor b (16) at non-singleton
        # dimension 1)")
        if text.endswith(")") and text.count(")") > text.count("("):
            text = text[:-1]
        bound = re.search(r"L\['\w+'\]\.size\(\)\[\d+\] <= (\d+)", text)
        if "Constraints violated" in text and bound:  # torch's code picks a path by the size (cdist's, above 25)
            raise SymPropError(f"the batch axis must stay free: torch's code for an op of the model takes one path up "
                               f"to a batch of {bound.group(1)} and another above it (torch.cdist does), so symprop "
                               "cannot derive it for every batch size; write the op out (cdist: the broadcast "
                               "difference's norm over the last axis)", _where_it_failed(error) or what) from None
        if "batch" in text and ("specializ" in text or "Constraints violated" in text):
            across = "; or the loss normalizes (N, N) scores over the batch axis (CLIP's loss of the texts, over " \
                "logits.t()), which symprop does not derive" if what == "loss" else ""
            raise SymPropError("the batch axis must stay free: the model fixes its size (it reads x.size(0) or "
                               f"len(x) as a number, or has a batch of one){across}; symprop derives for any batch "
                               "size", _where_it_failed(error) or what) from None
        unequal = re.search(r"L\['(\w+)'\]\.size\(\)\[(\d+)\] = (\d+) is not equal to "
                            r"L\['(\w+)'\]\.size\(\)\[(\d+)\] = (\d+)", text)
        if unequal:  # two arguments whose batch axes differ: one merges its batch with another axis, or has none
            a, i, m, b, j, n = unequal.groups()
            raise SymPropError(f"the batch axis of {a} (axis {i}, {m}) and of {b} (axis {j}, {n}) differ: give every "
                               "argument with its batch on an axis of its own (not merged with the sequence's by "
                               "view(-1)), and more than one example", what) from None
        if "fake tensor in the exported program" in text:
            raise SymPropError("torch.export cannot trace it: it reads a tensor's .data, or a tensor made outside "
                               "the traced code; write .detach() instead of .data", what) from None
        if type(error).__name__ == "DynamicOutputShapeException":  # text: the op, aten._ctc_loss.Tensor
            raise SymPropError(f"{text} is not supported by symprop: the shape of its result depends on the data",
                               what) from None
        cause = re.search(r"Caused by: \(([^)]*)\)", text)
        if "DataDependent" in type(error).__name__ and cause:  # a Python branch on a tensor's value
            raise SymPropError(f"torch.export cannot trace it: it branches on a value of the data, at {cause[1]}",
                               what) from None
        raise SymPropError(f"torch.export cannot trace it: {type(error).__name__}: {text[:300]}",
                           _where_it_failed(error) or what) from None
    buffers = {spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "BUFFER"}
    for node in _mutations_read_later(program.graph):
        if _sharing(node.args[0])[0].name in buffers:  # a buffer's: told as such once forward has run
            continue
        if aten_name(node.target) == "aten.embedding_renorm_.default":  # torch's code, not the user's
            raise SymPropError(f"embedding: max_norm is not supported: torch rescales the table's rows in place as "
                               f"it reads them{_context(node)}", location(node, where))
        raise SymPropError(f"{aten_name(node.target)} changes a value in place that forward reads again afterwards; "
                           "write it out of place (y = x * 2, not x.mul_(2))", location(node, where))
    return program


def _where_it_failed(error) -> str:
    """"forward (net.py:12)": the user's innermost line in a failed trace's traceback; "" where it has none."""
    return _innermost_line([(f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
                            for f, _ in traceback.walk_tb(error.__traceback__)])


_STDLIB = sysconfig.get_paths()["stdlib"].replace("\\", "/")


def _innermost_line(frames) -> str:
    """"forward (net.py:12)": the last of (file, line, function) frames in the user's code (not torch's, symprop's,
    Python's own or code that torch generates); "" where there is none."""
    def of_user(file: str) -> bool:
        file = file.replace("\\", "/")
        return not ("/torch/" in file or "/symprop/" in file or file.startswith((_STDLIB, "<")))

    user = [frame for frame in frames if of_user(frame[0])]
    if not user:
        return ""
    file, line, function = user[-1]
    return f"{function} ({Path(file).name}:{line})"


@contextmanager
def _torch_logs_quiet():
    """torch.export's logs (notes on symbolic sizes) off, and what it prints (graph dumps of a failed trace) kept back
    unless the trace succeeds (a print in the user's forward): a failure is told in one line instead."""
    import contextlib
    import io
    import logging
    import sys

    loggers = [logger for name, logger in logging.root.manager.loggerDict.items()
               if name.split(".")[0] == "torch" and isinstance(logger, logging.Logger)]
    levels = [logger.level for logger in loggers]
    printed, noted = io.StringIO(), io.StringIO()
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(noted):
            yield
        sys.stdout.write(printed.getvalue())
        sys.stderr.write(noted.getvalue())
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _lowered(program):
    """The program with each operation that symprop does not read, and that reads the inputs or parameters, lowered by
    torch's own decomposition table (nn.GRU and nn.LSTM into linear layers, gates and slices), until none is left
    that the table lowers."""
    from torch.export import default_decompositions

    table = default_decompositions()
    while True:
        lacking = {node.target for node in _variable_nodes(program) if not _known(aten_name(node.target))}
        lowerable = {op: table[op] for op in lacking if op in table}
        if not lowerable:
            return program
        program = program.run_decompositions(lowerable)


def _variable_nodes(program) -> list:
    """The operations that read the user's inputs or the parameters, directly or not (the rest are constants)."""
    kinds = {spec.arg.name: spec.kind.name for spec in program.graph_signature.input_specs}
    variable = set()
    for node in program.graph.nodes:
        if node.op == "placeholder" and kinds.get(node.name) in ("USER_INPUT", "PARAMETER"):
            variable.add(node)
        elif node.op == "call_function" and any(a in variable for a in node.all_input_nodes):
            variable.add(node)
    return [n for n in variable if n.op == "call_function"]


def _known(name: str) -> bool:
    if _in_place(name):
        name = _in_place(name)
    return name in ("operator.getitem", "aten.sym_size.int", GRAD_BLOCK, *CHECKS) or by_aten(name) is not None or \
        name in TORCH_FUNCTIONS


@contextmanager
def _masks_taken_as_given():
    """torch's transformer layers compare a mask's values with a causal mask to choose a faster kernel, which export
    cannot trace (the values are not known). The comparison only picks a kernel, so the mask is taken as given: the
    attention applies it, with the same result."""
    from torch.nn.modules import transformer

    detect = transformer._detect_is_causal_mask
    transformer._detect_is_causal_mask = lambda mask, is_causal=None, size=None: is_causal is True
    try:
        yield
    finally:
        transformer._detect_is_causal_mask = detect


@contextmanager
def _momentum_given(module):
    """A training batch norm with momentum None averages its running statistics over the batches seen, reading the
    count as a number, which export cannot trace. The statistics do not enter the loss in training mode, so a fixed
    momentum stands in while export traces."""
    from torch.nn.modules.batchnorm import _BatchNorm

    cumulative = [sub for sub in module.modules() if isinstance(sub, _BatchNorm) and sub.momentum is None]
    for sub in cumulative:
        sub.momentum = 0.1
    try:
        yield
    finally:
        for sub in cumulative:
            sub.momentum = None


RECURRENT = ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")  # torch: every weight U(-1/√hidden, 1/√hidden)


def torch_init(module, key: str):
    """How torch's layer class initializes the parameter at `key`, for the generated init_params: as symprop's layer
    of that class initializes it, which is torch's default; a parameter of the user's own module, which torch leaves
    to its author, N(0, 1)."""
    prefix, _, local = key.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    kind = type(owner).__name__
    if kind in RECURRENT and type(owner).__module__.startswith("torch.nn"):
        return ("uniform", 1 / owner.hidden_size ** 0.5)
    op = by_module(kind)
    layer = op.layer_class if op is not None and op.layer_class is not None else None
    if layer is None or not layer.from_torch or not type(owner).__module__.startswith("torch.nn"):
        return "normal"
    try:
        ours = dict(layer.from_torch(owner).named_parameters())
    except (SymPropError, TypeError):  # a configuration symprop's layer lacks: torch's own layer still exports
        return "normal"
    return ours[local].init if local in ours else "normal"


class Exported(Module):
    """A torch module's exported forward, replayed on symbolic tensors (or torch tensors); its parameters are the torch
    module's, under their state_dict keys, one Parameter for a tensor that torch holds under several (tied)."""

    def __init__(self, program, module, batch_axis=0):
        super().__init__()
        self.program = program
        # where torch's program has the batch: one axis for every input, or one each; symprop's arrays have it first
        self.batch_axis = batch_axis
        self.torch_name = type(module).__name__
        self._buffers_of = {}  # placeholder -> the buffer's or constant's tensor
        self._parameters_of = {}  # placeholder -> state_dict key
        self._state_buffers = {}  # state_dict key -> shape, of the buffers that torch saves in a state_dict
        made: dict[int, Parameter] = {}
        tensors = dict(module.named_parameters(remove_duplicate=False))
        for key, tensor in tensors.items():
            parameter = made.setdefault(id(tensor), Parameter(tuple(tensor.shape), init=torch_init(module, key)))
            parameter.frozen = not tensor.requires_grad
            self._place(key, parameter)
        self._source_values = {key: tensor.detach().clone() for key, tensor in tensors.items()}
        # torch's own layers by module path, for the document's table of layers (calls: filled as forward is traced)
        self._layers = {path: Described(_described(sub)) for path, sub in module.named_modules()
                        if path and _torch_layer(sub)}
        self.calls = []  # (path, layer, output shape) of each call of one of them, in the order forward makes them
        self.where = ""  # a refusal's location where a node has no line of the user's (a loss function: its own)
        self.reads_only_used = False  # the network's parameters that the program never reads are resolved too
        # each batch norm's momentum (None: the cumulative mean, which export sees as 0.1; see _momentum_given)
        self._momenta = {path: sub.momentum for path, sub in module.named_modules()
                         if isinstance(getattr(sub, "momentum", 0), (float, type(None))) and
                         hasattr(sub, "track_running_stats")}
        # operations that draw random numbers: each is an input of the derivation (a noise, a dropout's mask)
        self.random = [n for n in program.graph.nodes if (aten_name(n.target) in RANDOM or _masked(n)) and
                       (aten_name(n.target) not in DROPOUTS and not _masked(n) or _dropping(n))]
        self.random_axis = {}  # random node -> the axis torch draws the batch on (1: sequence first)
        self._random_kinds = {}  # the input's name -> what it draws (random_kinds)
        # the outputs that forward returns: torch's lowering puts a training batch norm's new running statistics
        # before them (BUFFER_MUTATION), which symprop updates itself
        self._returned = [i for i, spec in enumerate(program.graph_signature.output_specs)
                          if spec.kind.name == "USER_OUTPUT"]
        self._moved = {i: spec.target for i, spec in enumerate(program.graph_signature.output_specs)
                       if spec.kind.name == "BUFFER_MUTATION"}
        # the running statistics torch's run moves (training, momentum a number), for symprop check to compare; a
        # cumulative mean (momentum None) export traces with a fixed momentum, so its run would not be torch's
        self._tracked = {f"{path}.{name}" for path, sub in module.named_modules()
                         if getattr(sub, "track_running_stats", False) and sub.training and
                         isinstance(getattr(sub, "momentum", None), float)
                         for name in ("running_mean", "running_var", "num_batches_tracked")}
        self._buffer_keys = {}  # placeholder -> state_dict key, of buffers
        for spec in program.graph_signature.input_specs:
            kind = spec.kind.name
            if kind == "PARAMETER":
                self._parameters_of[spec.arg.name] = spec.target
            elif kind in ("BUFFER", "CONSTANT_TENSOR"):
                self._buffer_keys[spec.arg.name] = spec.target
                self._buffers_of[spec.arg.name] = program.constants[spec.target] \
                    if spec.target in program.constants else program.state_dict[spec.target]
                if kind == "BUFFER" and spec.persistent:
                    self._state_buffers[spec.target] = tuple(self._buffers_of[spec.arg.name].shape)

    def random_kinds(self) -> dict[str, tuple]:
        return dict(self._random_kinds)

    def source_params(self) -> dict:
        """The source module's parameters as it was exported, {key: float64 NumPy array}, one key for tied ones."""
        return {key: self._source_values[key].double().numpy() for key, _ in self.named_parameters()}

    def init_doc(self) -> str:
        return (f"As torch's layers initialize them by default, drawn in float64 (a matrix of in inputs U(-1/sqrt(in), "
                f"1/sqrt(in)), a norm's scale ones and shift zeros, a table of embeddings N(0, 1)); a parameter of "
                f"{self.torch_name}'s own modules N(0, 1). To start from the source module's values, pass its "
                f"state_dict instead.")

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._state_buffers)

    def random_inputs(self, taken: set) -> dict[str, tuple]:
        """{name: shape without the batch axis} of the random numbers forward draws, in the order it draws them:
        noise (randn_like: standard normal; rand_like: uniform on [0, 1)), or a dropout's mask (1 where an entry is
        kept, drawn with probability 1 - p)."""
        made = {}
        for node in self.random:
            stem = "dropout_mask" if aten_name(node.target) in DROPOUTS or _masked(node) else "noise"
            name, k = stem, 1
            while name in taken or name in made:
                name, k = f"{stem}_{k}", k + 1
            value = node.meta["val"]
            shape = (value[0] if isinstance(value, (tuple, list)) else value).shape
            if _masked(node):  # an op's own dropout (attention's, on its probabilities): the op says the shape
                shape = _masked(node).dropout_of(*_metas(node))[1]
            elif aten_name(node.target) in FEATURE_DROPOUTS:  # a whole channel dropped: (N, C, 1, ...)
                shape = (*shape[:2], *(1 for _ in shape[2:]))
            free = [a for a, d in enumerate(shape) if not isinstance(d, int)]  # the batch: first, or second (seq-first)
            if len(free) != 1 or free[0] > 1:
                raise SymPropError(f"{aten_name(node.target)}: random numbers of shape {tuple(shape)}, which is not "
                                   "one row per example", location(node))
            self.random_axis[node] = free[0]
            made[name] = tuple(int(d) for a, d in enumerate(shape) if a != free[0])
            self._random_kinds[name] = _kind(node)
        return made

    def _place(self, key: str, parameter: Parameter) -> None:
        *path, name = key.split(".")
        owner = self
        for part in path:
            if part not in owner._modules:
                owner.add_module(part, Part())
            owner = owner._modules[part]
        owner.register_parameter(name, parameter)

    def describe(self) -> str:
        return self.torch_name

    def forward(self, *inputs):
        self.calls = []  # each trace of forward lists its layers anew
        if self.split is None:
            return self.replay(inputs, every_parameter(self))
        output, target, _ = self.split  # the network's part: the target's input is not read, but for its batch size
        inputs = self._draws(inputs)
        batch = inputs[0].shape[0]
        sizes = Sizes((batch, *(int(d) for d in target.meta["val"].shape[1:])))
        self._values = self.evaluate(self.network_nodes, {target: sizes}, iter(inputs), every_parameter(self))
        return self._values[output]

    def loss_of_forward(self, output, t):
        """The rest of the program, from where forward stopped: the loss it computes itself, of its target `t`, and of
        `output` (what reads the logits, logits.view(-1, V), is computed again from the output given: the Gauss–Newton
        product gives it the output held constant)."""
        node, target, loss = self.split
        after = self._after_output
        values = {**{n: v for n, v in self._values.items() if n not in after}, node: output, target: t}
        rest = [n for n in self.program.graph.nodes if n not in values and n.op not in ("placeholder", "output")]
        return self.evaluate(rest, values, iter(()), every_parameter(self))[loss]

    def split_at(self, output: int, loss: int) -> None:
        """Make forward compute the program's output number `output` (the logits) and loss_of_forward its output number
        `loss`, computed from the forward's last input, which the logits do not read (the target)."""
        graph = self.program.graph
        outputs = self.returned(next(n for n in graph.nodes if n.op == "output").args[0])
        users = [n for n in graph.nodes if n.op == "placeholder" and n.name not in self._parameters_of and
                 n.name not in self._buffers_of]
        reads = _reads(graph)
        target = users[-1]
        if target in reads[outputs[output]] or target not in reads[outputs[loss]]:
            raise SymPropError("the model's own loss must read its last input (the targets), and its output must not",
                               "loss")
        self.split = (outputs[output], target, outputs[loss])
        self.network_nodes = [n for n in graph.nodes if n.op != "output" and target not in reads[n] | {n}]
        self._after_output = {n for n in graph.nodes if outputs[output] in reads[n]}

    split = None

    def _draws(self, inputs: tuple) -> tuple:
        """forward's own inputs; the random numbers after them are kept for the operations that draw them."""
        if not self.random:
            return inputs
        self._drawn = iter(inputs[len(inputs) - len(self.random):])
        return inputs[:len(inputs) - len(self.random)]

    def replay(self, inputs: tuple, parameters: dict):
        """The program's output, computed on `inputs` (symbolic tensors or torch tensors, batch first) and `parameters`
        (state_dict key -> Parameter)."""
        inputs = self._draws(inputs)
        axes = self.batch_axis if isinstance(self.batch_axis, tuple) else (self.batch_axis,) * len(inputs)
        inputs = tuple(_swapped(x) if a else x for x, a in zip(inputs, axes, strict=True))
        values = self.evaluate(list(self.program.graph.nodes), {}, iter(inputs), parameters)
        trace = running()
        for i, key in self._moved.items():  # torch's run of a lowered program: its new statistics, as outputs
            if isinstance(trace, TorchRun) and key in trace.running and values["output"][i] is not None:
                trace.running[key][1].value = values["output"][i].detach()  # not in place: backward reads it
        outputs = self.returned(values["output"])
        if self.batch_axis and not isinstance(self.batch_axis, tuple):  # the network's: its output batch first
            outputs = [self._batch_first(y, i) for i, y in enumerate(outputs)]
        if self.read_first:  # the network's output is the first; the loss reads the others too (a VAE's μ, log σ²)
            self.more_outputs = tuple(outputs[1:])
            return outputs[0]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def returned(self, outputs) -> list:
        """Of the program's outputs, those that forward returns."""
        return [outputs[i] for i in self._returned]

    read_first = False  # forward returns a tuple, whose first tensor is the network's output
    more_outputs = ()

    def _batch_first(self, y, i: int):
        return _swapped(y) if self.output_axis(i) else y

    def output_axis(self, i: int) -> int | None:
        """The batch axis of output number i: the one the exported program keeps free, first or second; None for an
        output after the first that has none (a learned temperature, logit_scale.exp(), returned beside the batch)."""
        returned = self.returned(next(n for n in self.program.graph.nodes if n.op == "output").args[0])
        shape = returned[i].meta["val"].shape
        free = [a for a, d in enumerate(shape) if not isinstance(d, int)]
        if i and not free:
            return None
        text = "(" + ", ".join(re.sub(r"\bs\d+\b", "N", str(d)) for d in shape) + ")"  # torch's batch size s12: N
        name = "forward's output" if not i else f"forward's output number {i + 1}"
        if any(not getattr(getattr(shape[a], "node", None), "expr", sp.Symbol("s")).is_Symbol for a in free):
            raise SymPropError(f"{name} has shape {text}: the batch is merged with another axis (a "
                               "view(-1, ...) in forward); return it with the batch on an axis of its own, and let "
                               "the loss reshape it", "forward")
        if free == [0, 1] and str(shape[0]) == str(shape[1]):  # (N, N): a batch's similarities (CLIP's logits)
            return 0
        if free not in ([0], [1]):
            raise SymPropError(f"{name} has shape {text}: symprop needs its batch on an axis of its "
                               "own, first or second", "forward")
        return free[0]

    def evaluate(self, nodes: list, values: dict, arguments, parameters: dict) -> dict:
        """`values` with each of `nodes` computed in order (the output node's, under "output")."""
        trace = running()
        graph = trace.graph if isinstance(trace, GraphTrace) else None  # None: the torch reference run
        for node in nodes:
            if graph is not None:
                self._enter(node, graph)
            try:
                self._compute(node, values, arguments, parameters, graph)
            except SymPropError as error:
                if error.where:
                    raise
                raise SymPropError(error.message + _context(node), location(node, self.where)) from None
            except ClassIndices:  # the model's trace learns that the target holds class indices, and starts again
                raise
            except Exception as error:  # an operation symprop reads, on arguments it does not expect: one line
                text = " ".join(str(error).split())[:200]
                raise SymPropError(f"{aten_name(node.target)}: {type(error).__name__}: {text}{_context(node)}",
                                   location(node, self.where)) from None
            if graph is not None and self.calls and self.calls[-1][0] == graph.path and \
                    isinstance(values.get(node), SymbolicTensor):  # a torch layer's output: its last value
                self.calls[-1] = (graph.path, self.calls[-1][1], values[node].shape)
        if graph is not None:
            graph.path = ""
            for i, (path, momentum, *sums) in enumerate(graph.running_statistics):
                graph.running_statistics[i] = (path, self._momenta.get(path, momentum), *sums)
        return values

    def _enter(self, node, graph) -> None:
        """The innermost module that made `node`, for the document: its rows' group, and its table of layers."""
        stack = node.meta.get("nn_module_stack") or {}
        graph.path = next(reversed(stack.values()))[0] if stack else ""
        if graph.path in self._layers and (not self.calls or self.calls[-1][0] != graph.path):
            self.calls.append((graph.path, self._layers[graph.path], None))

    def _compute(self, node, values: dict, arguments, parameters: dict, graph) -> None:
        """values[node]: one node of the program, on symbolic tensors (graph) or torch's (the reference)."""
        if node.op == "placeholder":
            if self.reads_only_used and not node.users and node.name in self._parameters_of | self._buffers_of:
                values[node] = None  # the network's parameter or buffer that a loss function does not read
                return
            values[node] = self._placeholder(node.name, arguments, parameters)
            dtype = getattr(node.meta.get("val"), "dtype", None)
            if isinstance(values[node], SymbolicTensor) and dtype is not None and not dtype.is_floating_point:
                tensor = graph.tensors[values[node].value.expr]  # booleans or integers: the code's dtype is another's
                tensor.boolean = str(dtype) == "torch.bool"
                tensor.integer = not tensor.boolean
        elif node in self.random:  # drawn by the caller: the next input after forward's own, batch first
            drawn = next(self._drawn)
            if self.random_axis.get(node):
                drawn = _swapped(drawn)
            if _masked(node):  # symbolic or torch: symprop's meaning of the op, given the mask
                op = meaning(_masked(node), aten_name(node.target))
                values[node] = op(*_load(node.args, values), **_load(node.kwargs, values), dropout_mask=drawn)
            else:
                values[node] = _randomized(node, _load(node.args, values), drawn)
        elif node.op == "output":
            values["output"] = _load(node.args[0], values)
        elif node.op == "get_attr":  # a block's own graph: a torch.no_grad() block in forward
            values[node] = getattr(self.program.graph_module, node.target)
        elif aten_name(node.target) == GRAD_BLOCK:
            values[node] = self._block(node, values, parameters)
        elif _float_cast(node):  # the identity, on symbolic tensors and in torch's reference alike
            values[node] = _load(node.args[0], values)
            if graph is not None and _narrowing(node):
                graph.note(CAST, location(node, self.where), str(node.meta["val"].dtype).replace("torch.", ""))
        else:
            values[node] = _call(node, _load(node.args, values), _load(node.kwargs, values))
        values[node] = _typed(values.get(node), node)
        if graph is not None and _residual(node, values[node]):
            values[node] = SymbolicTensor(graph.named(values[node].value, "res"))

    def _block(self, node, values: dict, parameters: dict) -> tuple:
        """A `with torch.no_grad():` block in forward (torch.export's set_grad_enabled(False) around its graph): its
        graph on its inputs, each result read as a constant (detached) where gradients are off."""
        enabled, block, *inputs = _load(node.args, values)
        results = self.evaluate(list(block.graph.nodes), {}, iter(inputs), parameters)["output"]
        results = tuple(results) if isinstance(results, (tuple, list)) else (results,)
        return tuple(r if enabled or not hasattr(r, "detach") else r.detach() for r in results)

    def _placeholder(self, name: str, arguments, parameters: dict):
        if name in self._parameters_of:
            return parameters[self._parameters_of[name]].resolve()
        if name in self._buffers_of:
            buffer = self._buffers_of[name]
            trace = running()  # torch's run: a buffer in its parameters' dtype (symbolic traces keep no dtype, and
            # resolving a parameter there would count as reading it)
            like = next((p.resolve() for p in parameters.values()), None) if isinstance(trace, TorchRun) else None
            # a copy: the program may update it in place (a batch norm's count)
            if type(like).__module__.startswith("torch") and like.is_floating_point() and buffer.is_floating_point():
                buffer = buffer.to(like.dtype, copy=True)  # place (a batch norm's count); torch's run: in its dtype
            else:
                buffer = buffer.clone()
            trace, key = running(), self._buffer_keys.get(name)
            if isinstance(trace, TorchRun) and key in self._tracked:  # torch's run: what it moves, for check
                trace.running[key] = (buffer.clone(), SimpleNamespace(value=buffer), "value")
            return buffer
        return next(arguments)


def _residual(node, value) -> bool:
    """A sum of arrays read by more than one operation (a residual stream: x = x + attn(ln_1(x))), stored under a
    name as a spec's residual is: what reads it reads the name, so a layer norm of it finds Σ(x − Σx/E) = 0 and its
    backward pass takes its compact form."""
    return isinstance(value, SymbolicTensor) and isinstance(value._value.expr, sp.Add) and \
        sum(1 for user in node.users if user.op == "call_function") > 1


def _typed(value, node):
    """A symbolic value marked boolean where torch's is (a mask as an input, or a comparison reshaped): an attention
    mask of booleans drops where it is False, one of numbers is added."""
    if not isinstance(value, SymbolicTensor):
        return value
    boolean = str(getattr(node.meta.get("val"), "dtype", "")) == "torch.bool"
    if boolean != value.boolean:  # a new wrapper: a cast's identity must not mark its operand too
        value = SymbolicTensor(value._value)
        value.boolean = boolean
    return value


class Described:
    """A torch layer as the document's table names it: Linear(in_features=32, out_features=96, bias=True)."""

    def __init__(self, text: str):
        self.text = text

    def describe(self) -> str:
        return self.text


def _described(module) -> str:
    """A torch layer as symprop's layer of its class describes it (Linear(32, 96)), else as torch does."""
    op = by_module(type(module).__name__)
    layer = op.layer_class if op is not None and op.layer_class is not None and op.layer_class.from_torch else None
    try:
        return layer.from_torch(module).describe() if layer is not None else \
            f"{type(module).__name__}({module.extra_repr()})"
    except (SymPropError, TypeError):
        return f"{type(module).__name__}({module.extra_repr()})"


def _torch_layer(module) -> bool:
    import torch

    containers = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
    return type(module).__module__.startswith("torch.nn") and not isinstance(module, containers)


def _swapped(x):
    """x with its first two axes swapped (batch first <-> sequence first); a torch tensor laid out anew, as torch's
    user has it, so that forward's views of it work."""
    return x.transpose(0, 1) if isinstance(x, SymbolicTensor) else x.transpose(0, 1).contiguous()


# native: (output, mask), as nn.LSTM's own; dropout_: nn.Dropout(inplace=True), the same drawn in place; feature:
# nn.Dropout1d/2d, which drops whole channels (a mask of one number per example and channel)
FEATURE_DROPOUTS = ("aten.feature_dropout.default", "aten.feature_dropout_.default")
DROPOUTS = ("aten.dropout.default", "aten.dropout_.default", "aten.native_dropout.default", *FEATURE_DROPOUTS)
RANDOM = ("aten.randn_like.default", "aten.rand_like.default", *DROPOUTS)


def _masked(node):
    """The op of a node that drops entries of its own, given a mask (attention with dropout_p: its `dropout_of`
    says the probability and the mask's shape), else None."""
    op = by_aten(aten_name(node.target)) if node.op == "call_function" else None
    return op if op is not None and getattr(op, "dropout_of", None) is not None else None


def _metas(node) -> tuple:
    """A node's arguments as torch.export traced them (tensors' shapes, numbers)."""
    def meta(a):
        return a.meta.get("val") if hasattr(a, "meta") else a

    return tuple(meta(a) for a in node.args), {k: meta(v) for k, v in node.kwargs.items()}


def _kind(node) -> tuple:
    """What a random operation draws: ("keep", 1 - p) for a dropout's mask, ("normal",) or ("uniform",)."""
    name = aten_name(node.target)
    if name == "aten.randn_like.default":
        return ("normal",)
    if name == "aten.rand_like.default":
        return ("uniform",)
    p = _masked(node).dropout_of(*_metas(node))[0] if _masked(node) else \
        node.kwargs.get("p", node.args[1] if len(node.args) > 1 else 0.5)
    return ("keep", 1 - p)


def _dropping(node) -> bool:
    """Whether a dropout node drops (p > 0, training): in eval mode, or at p = 0, it is the identity. An attention
    drops where its dropout_p > 0."""
    if _masked(node):
        return bool(_masked(node).dropout_of(*_metas(node))[0])
    p, train = (list(node.args[1:]) + [None, None])[:2]
    return bool(node.kwargs.get("p", p) and node.kwargs.get("train", train))


def _randomized(node, args, drawn):
    """A random operation, given what it draws: the noise itself, or the input with the dropout's mask applied and
    the kept entries scaled by 1 / (1 - p), as torch's dropout scales them."""
    name = aten_name(node.target)
    if name not in DROPOUTS:
        return drawn
    x, p = args[0], node.kwargs.get("p", args[1] if len(args) > 1 else 0.5)
    kept = x * drawn * (1 / (1 - p))
    return (kept, drawn) if name == "aten.native_dropout.default" else kept


def _reads(graph) -> dict:
    """node -> the nodes whose values it reads, directly or not (a size is not a value: forward may read the batch size
    from the targets, which is every input's)."""
    reads: dict = {}
    for node in graph.nodes:
        direct = [] if aten_name(node.target) == "aten.sym_size.int" else node.all_input_nodes
        reads[node] = set(direct).union(*(reads[a] for a in direct))
    return reads


class Sizes:
    """The shape of an input that is not read, only its sizes (the targets, while forward computes the logits)."""

    def __init__(self, shape: tuple):
        self.shape = shape

    def size(self, dim: int):
        return self.shape[dim]


class Part(Module):
    """A submodule of the torch module: what holds its parameters, under their names."""

    def symbol_stem(self, name: str, tag: str) -> str | None:
        """A layer of a Sequential names its weight and bias as symprop's Linear does: w0, b0."""
        return {"weight": "w", "bias": "b"}.get(name, name) + tag if tag.isdigit() else None


def every_parameter(module: Module) -> dict:
    """state_dict key -> Parameter, under every key a parameter has (a tied one under each)."""
    return {f"{path}.{name}" if path else name: parameter for path, sub in module.named_modules()
            for name, parameter in sub._parameters.items()}


def _load(arg, values):
    if isinstance(arg, (list, tuple)):
        return type(arg)(_load(a, values) for a in arg)
    if isinstance(arg, dict):
        return {k: _load(v, values) for k, v in arg.items()}
    return values.get(arg, arg) if type(arg).__name__ == "Node" else arg


def _symbolic(arg) -> bool:
    """Whether an argument is (or holds) a symbolic tensor, or a size that is the batch size."""
    if isinstance(arg, (list, tuple)):
        return any(_symbolic(a) for a in arg)
    return isinstance(arg, (SymbolicTensor, sp.Expr))


def _in_place(name: str) -> str | None:
    """aten.add.Tensor for aten.add_.Tensor (h += 1, an nn layer with inplace=True): the operation it does in place."""
    match = re.fullmatch(r"aten\.(\w+[^_])_\.(\w+)", name)
    return f"aten.{match.group(1)}.{match.group(2)}" if match else None


def _mutations_read_later(graph) -> list:
    """The in-place operations whose input forward reads again after it (not through the operation's result), itself
    or through another name for its memory (v = h[:, :4]; v.mul_(2), then h read): read as their out-of-place twins,
    those reads would see the value from before."""
    order = {node: i for i, node in enumerate(graph.nodes)}
    return [node for node in graph.nodes if node.op == "call_function" and _in_place(aten_name(node.target))
            and node.args and any(order[user] > order[node] for shared in _sharing(node.args[0])
                                  for user in getattr(shared, "users", ()))]


def _view_of(node):
    """The node whose tensor `node`'s result is a view of, where torch's schema says its result aliases its input
    without writing it (view, slice, select, permute, reshape, split...); None otherwise."""
    if getattr(node, "op", "") != "call_function":
        return None
    if aten_name(node.target) == "operator.getitem":  # one of split's views: of split's list of them
        return node.args[0] if _view_of(node.args[0]) is not None else None
    returns = getattr(getattr(node.target, "_schema", None), "returns", ())
    alias = returns[0].alias_info if returns else None
    return node.args[0] if alias is not None and not alias.is_write and node.args else None


def _sharing(node) -> list:
    """`node` and every node that names its memory: the tensor it is a view of, and all the views of that."""
    root = node
    while _view_of(root) is not None:
        root = _view_of(root)
    shared, todo = [], [root]
    while todo:
        current = todo.pop()
        shared.append(current)
        todo += [user for user in getattr(current, "users", ()) if _view_of(user) is current]
    return shared


def _call(node, args, kwargs):
    """One ATen operation: torch's own where it reads no symbolic tensor (a constant, or a run in torch), else its
    registry op's meaning on symbolic tensors (an in-place one's, its out-of-place twin's)."""
    name = aten_name(node.target)
    unread = [a for a in (*args, *kwargs.values()) if isinstance(a, Unread)]
    if unread:  # a result that symprop does not read, read
        raise SymPropError(unread[0].message)
    name = _in_place(name) if _in_place(name) and _symbolic([*args, *kwargs.values()]) else name
    if name == "aten.sym_size.int":  # a size: the batch size N along the batch axis, else a number
        tensor, dim = args
        return tensor.shape[dim] if isinstance(tensor, SymbolicTensor) else tensor.size(dim)
    if name in CHECKS:  # what torch asserts of a value at run time, not a value
        return None
    if not _symbolic([*args, *kwargs.values()]):
        if name == "aten.view.default":  # a run in torch may use other kernels than the trace did (attention's math
            return args[0].reshape(*args[1:], **kwargs)  # one, for double backward), their results laid out otherwise
        return node.target(*args, **kwargs)
    if name == "operator.getitem":  # an item of an operation's tuple of results (split)
        return args[0][args[1]]
    op = by_aten(name)
    function = meaning(op, name) if op is not None else TORCH_FUNCTIONS.get(name)
    if function is None:
        raise SymPropError(f"{name} is not supported by symprop")
    return function(*args, **kwargs)


CHECKS = ("aten._assert_tensor_metadata.default",)  # torch.export's record of a dtype that forward relies on
CASTS = ("aten.to.dtype", "aten._to_copy.default")
GRAD_BLOCK = "wrap_with_set_grad_enabled"  # with torch.no_grad(): ... inside forward
CAST = define(
    "cast", "{0}: a cast to {1} is read as the identity: the generated code computes in its arrays' dtype, where "
    "torch rounds to {1} (and agrees with it to that precision)",
    r"{0}: a cast to {1} is read as the identity: the generated code computes in its arrays' dtype.", warning=True)


def _float_cast(node) -> bool:
    """A cast from one float dtype to another (x.float() in a float64 model: LLaMA's RMSNorm, written for half
    precision, upcasts so); it is the identity on symbolic tensors and in torch's reference alike."""
    if aten_name(node.target) not in CASTS or not node.args or not hasattr(node.args[0], "meta"):
        return False
    before, after = node.args[0].meta.get("val"), node.meta.get("val")
    return all(getattr(v, "is_floating_point", lambda: False)() for v in (before, after)) and \
        before.dtype != after.dtype


def _narrowing(node) -> bool:
    import torch

    return torch.finfo(node.meta["val"].dtype).bits < torch.finfo(node.args[0].meta["val"].dtype).bits


def aten_name(target) -> str:
    """aten.linear.default, operator.getitem: an exported node's operation, as the registry names it."""
    if getattr(target, "__module__", "") == "_operator":
        return f"operator.{target.__name__}"
    return str(target)


def _inside(node) -> str:
    """" (inside nn.LSTM lstm)": the torch layer whose own code made a node, where one did (an op the user never
    wrote: nn.LSTM(bidirectional=True)'s flip); "" for the user's own code."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, kind = next(reversed(stack.values()))
    name = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
    if not name.startswith("torch.nn.") or not path:
        return ""
    return f" (inside nn.{name.rsplit('.', 1)[-1]} {path.removeprefix('L__self__').strip('._') or path})"


def _context(node) -> str:
    """Where a refused node comes from, where the user did not write it: a torch layer, or torch's lowering of a
    function."""
    return _inside(node) or _lowered_from(node)


def _lowered_from(node) -> str:
    """" (in torch's lowering of logaddexp)": the torch function the user called, where torch's decomposition of it
    made the node (symprop does not read that function, or not in that form); "" where the node is the call itself."""
    called = (node.meta.get("torch_fn") or ("", ""))[1].rsplit(".", 1)[-1]
    if not called or called.strip("_") in str(getattr(node.target, "__name__", node.target)):
        return ""
    return f" (in torch's lowering of {called})"


def _returned_kind(output) -> str:
    """What forward returned, where it is not a tensor or a tuple of them: "a dict (its keys 'logits', 'loss')"."""
    import torch

    if isinstance(output, dict):
        return f"a dict (keys {', '.join(map(repr, list(output)[:4]))}: return a tuple of its tensors)"
    kinds = sorted({type(y).__name__ for y in (output if isinstance(output, tuple) else (output,))
                    if not torch.is_tensor(y)})
    return f"something other than tensors ({', '.join(kinds)})"


RUNNING_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def _buffers_changed_refused(module, before: dict) -> None:
    """SymPropError where a run of forward changed a buffer, in place or by giving it a new tensor (`before`: each
    buffer's tensor and a copy of it, from before the run), other than a torch norm layer's running statistics,
    which symprop updates itself (a batch norm written by hand that moves its own running mean; a step counter): the
    generated modules would leave the buffer as it was, where torch's run changes it."""
    from torch.nn.modules.batchnorm import _NormBase

    for key, value in module.named_buffers():
        path, _, name = key.rpartition(".")
        owner = module.get_submodule(path) if path else module
        kept, copy = before.get(key, (None, None))
        if name in RUNNING_STATISTICS and isinstance(owner, _NormBase) or value is kept and _same(value, copy):
            continue
        hint = "; use torch's batch norm layers, whose running statistics symprop updates, or read the model in " \
            "eval() mode" if name.startswith("running") and owner.training else ""
        raise SymPropError(f"forward changes the buffer {key!r}: symprop derives the gradients, but its modules "
                           f"would leave the buffer as it was{hint}",
                           defined_at(type(owner).forward, "forward") or "forward")


def _same(a, b) -> bool:
    """Whether two tensors hold the same entries, a NaN the same as a NaN (a table of numbers with gaps)."""
    import torch

    return a.shape == b.shape and a.dtype == b.dtype and (torch.equal(a, b) or a.is_floating_point() and bool(
        torch.isclose(a, b, rtol=0, atol=0, equal_nan=True).all()))


def location(node, where: str = "") -> str:
    """The user's file:line that made a node (the last frame of its stack trace outside torch); "" for a node that a
    torch layer's own code made with no line of the user's above it (nn.Sequential's layers: the message names the
    layer), else `where` (torch keeps only frames of forward methods: a loss function's lines are not among them), or
    the node's name."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', node.meta.get("stack_trace") or "")
    return _innermost_line(frames) or ("" if _inside(node) else where or node.name)


def defined_at(function, name: str = "loss") -> str:
    """"loss (train.py:12)": where the user defined a loss function (a partial's, or a callable object's __call__), or
    another function under its `name`; "" where unknown."""
    function = getattr(function, "func", function)  # functools.partial(loss, ...)
    called = vars(type(function)).get("__call__")  # a callable object's class's own
    code = getattr(function, "__code__", None) or getattr(called, "__code__", None)
    if code is None or f"{Path('torch')}/" in code.co_filename.replace("\\", "/"):
        return ""
    return f"{name} ({Path(code.co_filename).name}:{code.co_firstlineno})"
