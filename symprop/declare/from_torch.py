"""From torch: a torch.nn.Module as its user wrote it, read into a symprop Model.

torch.fx traces the module's forward, keeping the torch.nn layers that symprop has (each op's layer) as leaves.
The result is a symprop Module that mirrors the torch module's tree, so its parameters have the torch module's own
state_dict keys (and a module or parameter reached twice stays one), and whose forward replays the traced graph
with symprop's functional vocabulary. A loss function is traced the same way.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from pathlib import Path

from ..errors import SymPropError
from ..ops.registry import by_module, is_loss, layers
from .calls import in_torch, resolved
from .export import exported_model, loss_holder, torch_loss
from .model import Model
from .module import Module
from .tensor import Parameter, accepted, torch_callable, torch_method, torch_name
from .torch_eval import require_torch

_SKIP = (os.sep + "torch" + os.sep, str(Path(__file__).resolve().parent.parent) + os.sep)


def from_torch(module, loss, inputs=None, name: str = "model", sequence: int | None = None, target: str | None = None,
               source: str = "", example_inputs=None, example_target=None, batch_axis: int | None = None) -> Model:
    """The symprop Model of a torch.nn.Module and its loss (a torch loss module, or a function of (output,
    target) written with torch operations).

    With `example_inputs` (a tuple of tensors, the batch axis first), the module is traced by torch.export on them,
    as its user wrote it (see export.py), and a loss function on its output and `example_target`. `batch_axis` 1
    reads the batch from the second axis (sequence first, torch's batch_first=False; the default where the module
    has a layer with batch_first=False); the generated modules take every array batch first. Without, `inputs` is
    as for Model (a width, or {name: width or shape}) and torch.fx traces it, keeping torch's layers whole.
    The target has the output's shape, or holds class indices where the loss hands it to a loss that takes them
    (or `target="index"` says so)."""
    if example_inputs is not None:
        if inputs is not None or sequence is not None:
            raise SymPropError("give example_inputs or inputs (and sequence), not both", "inputs")
        with _buffers_kept(module):  # reading the model runs it: in training mode, its batch norms would move
            return exported_model(module, loss, example_inputs, example_target, name=name, target=target,
                                  source=source, batch_axis=batch_axis)
    if inputs is None:
        raise SymPropError("give example_inputs (a tuple of tensors, the batch axis first), or inputs", "inputs")
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise SymPropError(f"expected a torch.nn.Module, got {type(module).__name__}", "module")
    net = _translate(module, "forward")
    symprop_loss = torch_loss(loss)
    if symprop_loss is None:  # a loss function: class indices are found as it is traced
        symprop_loss = _translate_loss(loss, module, net)
    return Model(net, symprop_loss, name=name, inputs=inputs, sequence=sequence, target=target, source=source)


@contextlib.contextmanager
def _buffers_kept(module):
    """The module's buffers (a batch norm's running statistics) and its submodules' plain attributes (a hidden state
    that forward keeps, self.hidden = h.detach()) as they were, whatever runs it meanwhile."""
    kept = {name: buffer.detach().clone() for name, buffer in getattr(module, "named_buffers", dict)()}
    modules = list(module.modules()) if hasattr(module, "modules") else []
    torch = _torch()
    attributes = [(sub, {k: v for k, v in vars(sub).items() if not k.startswith("_")}) for sub in modules]
    numbers = {(id(sub), k): v.detach().clone() for sub, before in attributes for k, v in before.items()
               if torch.is_tensor(v)}  # a tensor attribute that forward changes in place (self.h.add_(...))
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in kept.items():
                module.get_buffer(name).copy_(value)
            for sub, before in attributes:
                for key in [k for k in vars(sub) if not k.startswith("_") and k not in before]:
                    delattr(sub, key)
                for key, value in before.items():
                    if vars(sub).get(key) is not value:
                        object.__setattr__(sub, key, value)
                    if (id(sub), key) in numbers:
                        value.copy_(numbers[id(sub), key])


def _torch():
    torch = require_torch("from_torch")
    importlib.import_module("torch.fx")  # a submodule: torch.fx is read once it is loaded
    return torch


# -- tracing -----------------------------------------------------------------------------------------------
def _tracer():
    torch = _torch()

    class Tracer(torch.fx.Tracer):
        """Keeps torch.nn's own layers as leaves, and where in the user's code each node was made."""

        def __init__(self):
            super().__init__()
            self.locations = {}

        def is_leaf_module(self, m, qualname):
            return type(m).__module__.startswith("torch.nn") and not isinstance(
                m, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict))

        def create_node(self, *args, **kwargs):
            node = super().create_node(*args, **kwargs)
            self.locations[node] = _user_frame()
            return node

    return Tracer()


def _user_frame() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        file = frame.f_code.co_filename
        if not any(part in file for part in _SKIP) and "<" not in file[:1]:
            return f"{frame.f_code.co_name} ({Path(file).name}:{frame.f_lineno})"
        frame = frame.f_back
    return ""


def _trace(root, what: str):
    tracer = _tracer()
    try:
        graph = tracer.trace(root)
    except SymPropError:
        raise
    except Exception as error:  # fx's own explanation (control flow on a traced value, ...), in one line
        text = " ".join(str(error).split())
        raise SymPropError(f"torch.fx cannot trace it: {type(error).__name__}: {text[:300]}", what) from None
    return graph, tracer.locations


def _translate(module, what: str) -> Module:
    """A symprop Module mirroring `module`'s tree, whose forward replays its traced graph."""
    graph, locations = _trace(module, what)
    calls = {node.target: node for node in graph.nodes if node.op == "call_module"}
    mirror = _mirror(module, calls)
    mirror.torch_forwards = {path: type(module.get_submodule(path)).forward for path in calls}
    mirror.graph, mirror.locations = graph, locations
    return mirror


class Traced(Module):
    """A torch module's forward, replayed on symprop's vocabulary; submodules mirror the torch module's."""

    graph = None
    locations: dict = {}

    def forward(self, *inputs):
        return replay(self.graph, self.locations, self, inputs)

    def describe(self) -> str:
        return self.torch_name


def _mirror(module, calls: dict) -> Traced:
    """The symprop tree of a torch module: a symprop layer for each leaf that forward calls, a container for
    every other module, and every parameter under its torch name (one object where torch has one)."""
    root = Traced()
    root.torch_name = type(module).__name__
    made: dict[int, Module] = {}  # id(torch module) -> its mirror
    parameters: dict[int, Parameter] = {}  # id(torch parameter) -> its mirror
    leaves: list[str] = []
    for path, sub in module.named_modules():
        if id(sub) in made or any(path.startswith(leaf + ".") for leaf in leaves):
            continue  # a module met before (tied), or a part of a layer symprop has whole
        mirror = root if path == "" else _layer(sub, calls[path], module) if path in calls else Module()
        made[id(sub)] = mirror
        if path:
            parent, _, name = path.rpartition(".")
            made[id(module.get_submodule(parent))].add_module(name, mirror)
        if path in calls:  # a layer symprop has: its parameters are the layer's own, under torch's names
            leaves.append(path)
            theirs, ours = dict(sub.named_parameters(remove_duplicate=False)), dict(mirror.named_parameters())
            if list(theirs) != list(ours):
                raise SymPropError(f"{type(sub).__name__}'s parameters ({', '.join(theirs)}) differ from "
                                   f"symprop's {mirror.describe()}", path)
        else:  # a container: its own parameters are free ones
            theirs = dict(sub.named_parameters(recurse=False))
            for name, value in theirs.items():
                if id(value) not in parameters:
                    mirror.register_parameter(name, Parameter(tuple(value.shape)))
            ours = mirror._parameters
        for name, value in theirs.items():
            if id(value) not in parameters:
                parameters[id(value)] = ours[name]
                ours[name].frozen = not value.requires_grad
            elif "." not in name:  # a parameter torch holds twice (tied weights) is one here too
                setattr(mirror, name, parameters[id(value)])
            elif name in mirror._parameters:
                mirror._parameters[name] = parameters[id(value)]
    return root


def _layer(sub, node, root) -> Module:
    name = type(sub).__name__
    op = by_module(name)
    layer = op.layer_class if op is not None and op.layer_class is not None and op.layer_class.from_torch else None
    torch = _torch()
    if layer is None or type(sub) is not getattr(torch.nn, name, None):
        known = [name for name, cls in layers().items() if cls.from_torch and not is_loss(cls)]
        raise SymPropError(f"torch.nn.{name} is not supported by symprop (it has {', '.join(known)})", node.target)
    try:
        if not layer.torch_masks:
            return layer.from_torch(sub)
        arguments = inspect.signature(type(sub).forward).bind(sub, *node.args, **node.kwargs).arguments
        causal_flag, mask_argument, refused = layer.torch_masks
        for argument in refused:
            if arguments.get(argument) not in (None, False):
                raise SymPropError(f"{argument} is not supported yet (key padding masks and the causal mask are)")
        causal = arguments.get(causal_flag) is True or _causal(arguments.get(mask_argument), root, mask_argument)
        return layer.from_torch(sub, causal=causal)
    except SymPropError as error:
        raise SymPropError(error.message, node.target) from None


def _causal(mask, root, name: str) -> bool:
    """Whether a mask given to a transformer layer is the causal one (a constant of forward, as
    nn.Transformer.generate_square_subsequent_mask makes it); anything else is refused."""
    if mask is None:
        return False
    value = getattr(root, mask.target, None) if getattr(mask, "op", None) == "get_attr" else None
    torch = _torch()
    if torch.is_tensor(value) and value.dim() == 2 and value.shape[0] == value.shape[1]:
        above = torch.ones(value.shape, dtype=torch.bool).triu(1)
        masked = value if value.dtype == torch.bool else torch.isneginf(value)
        if torch.equal(masked, above) and (value.dtype == torch.bool or not value[~above].any()):
            return True
    raise SymPropError(f"{name}: only the causal mask (nn.Transformer.generate_square_subsequent_mask) is supported")


def _translate_loss(loss, module, net: Traced):
    """A loss function written with torch operations, traced as a method of a module that holds the network
    (so that the network's parameters it reads are known by name)."""
    torch = _torch()
    function = loss.forward if isinstance(loss, torch.nn.Module) else loss  # a loss module's call, read through
    graph, locations = _trace(loss_holder(function, module), "loss")
    for node in graph.nodes:
        if node.op == "call_module":
            raise SymPropError(f"the loss calls {node.target}: call layers in forward, not in the loss",
                               locations.get(node, "loss"))

    def replayed(y, t):
        return replay(graph, locations, net, (y, t), prefix="net.")

    replayed.__name__ = getattr(loss, "__name__", "loss")
    return replayed


# -- replaying a traced graph on symprop's vocabulary ----------------------------------------------------------
def replay(graph, locations: dict, owner: Module, inputs: tuple, prefix: str = ""):
    values = {}
    arguments = iter(inputs)
    for node in graph.nodes:
        try:
            if node.op == "placeholder":
                values[node] = next(arguments)
            elif node.op == "output":
                return _load(node.args[0], values)
            elif node.op == "get_attr":
                values[node] = _attribute(owner, node.target, prefix)
            else:
                args, kwargs = _load(node.args, values), _load(node.kwargs, values)
                values[node] = _call(node, owner, args, kwargs)
        except SymPropError as error:
            if error.where:
                raise
            raise SymPropError(error.message, locations.get(node) or node.name) from None
    return None


def _load(arg, values):
    if isinstance(arg, (list, tuple)):
        return type(arg)(_load(a, values) for a in arg)
    if isinstance(arg, dict):
        return {k: _load(v, values) for k, v in arg.items()}
    return values.get(arg, arg) if type(arg).__name__ == "Node" else arg


def _attribute(owner: Module, target: str, prefix: str):
    key = target[len(prefix):] if prefix and target.startswith(prefix) else target
    parameters = dict(owner.named_parameters())
    if key in parameters:
        return parameters[key]
    for path, module in owner.named_modules():  # a tied parameter, reached by another path
        for name, parameter in module._parameters.items():
            if (f"{path}.{name}" if path else name) == key:
                return parameter
    return Constant(target)


class Constant:
    """A tensor that is not a parameter (a buffer, or a constant such as a causal mask made in forward): refused
    where an operation reads it; a causal mask passed with is_causal=True is not read."""

    def __init__(self, target: str):
        self.target = target


def _constant_in(arguments) -> Constant | None:
    for argument in arguments:
        if isinstance(argument, Constant):
            return argument
        if isinstance(argument, (list, tuple)) and (found := _constant_in(argument)):
            return found
    return None


def _call(node, owner: Module, args, kwargs):
    if node.op == "call_module":
        layer = dict(owner.named_modules())[node.target]
        if layer.torch_masks:  # the key padding masks pass on; the causal mask is the layer's own
            arguments = inspect.signature(owner.torch_forwards[node.target]).bind(None, *args, **kwargs).arguments
            wanted = inspect.signature(layer.forward).parameters
            return layer(**{k: v for k, v in arguments.items() if k in wanted and v is not None})
    if (constant := _constant_in([*args, *kwargs.values()])) is not None:
        raise SymPropError(f"{constant.target} is a tensor that is not a parameter (a buffer or a constant "
                           "made in forward): not supported yet")
    if node.op == "call_module":
        return layer(*args, **kwargs)
    if in_torch(*args, *kwargs.values()):  # a run in torch (the reference): torch's own method or function, on
        args, kwargs = [resolved(a) for a in args], {k: resolved(v) for k, v in kwargs.items()}  # the tensors bound
        return getattr(args[0], node.target)(*args[1:], **kwargs) if node.op == "call_method" else \
            node.target(*args, **kwargs)
    if node.op == "call_method":
        method = torch_method(node.target)
        if method is None:
            raise SymPropError(f"Tensor.{node.target} is not supported by symprop")
        return method(*args, **kwargs)
    name = torch_name(node.target)
    function = torch_callable(name)
    if function is None:
        raise SymPropError(f"{name} is not supported by symprop")
    return function(*args, **accepted(function, kwargs, name))
