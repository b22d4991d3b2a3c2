"""Tracing: one `forward`, run two ways.

On symbolic tensors it builds the tensor graph that symprop derives (`GraphTrace`). On torch
tensors it runs in torch, built-in layers as their torch.nn twins (`TorchRun`): that is the
reference `check` compares with. A Parameter stands for whatever the running interpretation
binds it to, so `net.fc1.weight ** 2` in a loss works in both.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from pathlib import Path

from ..errors import SymPropError

_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep
_TORCH = os.sep + "torch" + os.sep  # torch's own frames (its function dispatch) are not the user's line
_running: contextvars.ContextVar = contextvars.ContextVar("symprop_interpretation", default=None)


def running():
    """The interpretation running now: a GraphTrace, a TorchRun, or None."""
    return _running.get()


@contextlib.contextmanager
def interpret(interpretation):
    token = _running.set(interpretation)
    try:
        yield interpretation
    finally:
        _running.reset(token)


def tag(path: str) -> str:
    """The suffix that names a module's values: "2" for layer 2 of a Sequential, "_fc1" for net.fc1."""
    return path if path.isdigit() else ("_" + path.replace(".", "_") if path else "")


class GraphTrace:
    """Builds the graph: parameters become graph tensors when first used; module calls set the naming scope."""

    def __init__(self, graph, parameters: dict, modules: dict, loss=None):
        self.graph = graph
        self._keys = {id(p): key for key, p in parameters.items()}  # id(Parameter) -> state_dict key
        self._paths = {id(module): path for path, module in modules.items()}
        if loss is not None:  # a loss module names its values plainly: p, total, L
            for _, module in loss.named_modules():
                self._paths.setdefault(id(module), "")
        self._owners = {}  # id(Parameter) -> (module path, attribute name), for its symbol's name
        for path, module in modules.items():
            for name, p in module._parameters.items():
                self._owners.setdefault(id(p), (path, name, module))
        self.params = {}  # state_dict key -> graph Value
        self.read = set()  # the symbols of named tensors that an operation has read
        self.target_open = False  # the target's kind is not declared: a loss function's use of it decides
        self.calls = []  # (path, module, output shape) of each call of a module, in order: the model's layers
        self._scopes = [""]
        # eval mode with the running statistics as inputs (forward_eval's trace): a batch norm that tracks them reads
        # them from `buffers`, by state_dict key
        self.running_inputs = False
        self.buffers = {}  # state_dict key -> graph Value

    def buffer(self, key: str, shape: tuple):
        """The graph value of a buffer given to the code by its state_dict key (made when first read)."""
        if key not in self.buffers:
            path, _, name = key.rpartition(".")
            stem = {"running_mean": "rm", "running_var": "rv"}.get(name, name) + tag(path)
            self.buffers[key] = self.graph.add(stem if stem[:1].isalpha() else "b_" + stem, shape, "param", key=key)
        return self.buffers[key]

    def bind(self, parameter):
        """The graph value a Parameter stands for (made when first used)."""
        key = self._keys.get(id(parameter))
        if key is None:
            raise fail("this Parameter is not an attribute of the model; assign it to a Module attribute "
                       "(or a submodule) in __init__, as in torch")
        if key not in self.params:
            path, name, module = self._owners[id(parameter)]
            stem = module.symbol_stem(name, tag(path)) or (f"{path}_{name}" if path else name).replace(".", "_")
            stem = stem if stem[:1].isalpha() else "p_" + stem  # a name of code: not 0_weight
            self.params[key] = self.graph.add(stem, parameter.shape, "param", key=key)
        return self.params[key]

    def stem(self, base: str) -> str:
        """A name for a value made inside the module being called: h2 in layer 2, h_block in net.block, and
        emb in net.emb (not emb_emb)."""
        tag = self._scopes[-1]
        return base if base and tag[1:] == base else base + tag

    def path_of(self, module) -> str:
        """The module's state_dict path in the model ("" for the model itself, or a module outside it)."""
        return self._paths.get(id(module), "")

    def called(self, module, result) -> None:
        path = self._paths.get(id(module), "")
        self.calls.append((path, module, getattr(result, "shape", None)))

    @contextlib.contextmanager
    def scope(self, module):
        path = self._paths.get(id(module))
        if path is None and any(True for _ in module.named_parameters()):
            raise fail(f"{type(module).__name__} is not a submodule of the model; assign it to an attribute "
                       "in __init__, as in torch")
        path = path or ""  # a module without parameters (a loss made in the loss function) may be made anywhere
        self._scopes.append(tag(path))
        try:
            yield
        finally:
            self._scopes.pop()


class ClassIndices(Exception):
    """Raised while tracing a loss function whose target's kind is not declared, when the function hands the
    target to a loss of class indices: the target holds class indices, as torch users pass them."""


class TorchRun:
    """Runs the model in torch: each parameter bound to a torch tensor (by state_dict key)."""

    def __init__(self, parameters: dict, tensors: dict, modules: dict | None = None):
        self._tensors = {id(p): tensors[key] for key, p in parameters.items()}
        self._paths = {id(module): path for path, module in (modules or {}).items()}
        self._twins = {}  # id(module) -> its torch twin, made once: a layer called twice updates one set of buffers
        self.running = {}  # state_dict key -> (value before the run, twin, buffer name), of running statistics

    def twin_of(self, module):
        """The module's torch twin (None: none); a BatchNorm's running statistics are recorded in `running`."""
        if id(module) not in self._twins:
            twin = self._twins[id(module)] = module.torch_twin()
            path = self._paths.get(id(module))
            if twin is not None and path is not None and getattr(twin, "track_running_stats", False) \
                    and twin.training:
                for name in ("running_mean", "running_var", "num_batches_tracked"):  # read after the run: twin.to
                    self.running[f"{path}.{name}"] = (getattr(twin, name).clone(), twin, name)  # replaces them
        return self._twins[id(module)]

    def bind(self, parameter):
        if id(parameter) not in self._tensors:
            raise SymPropError("this Parameter is not an attribute of the model")
        return self._tensors[id(parameter)]

    def tensors_of(self, module) -> dict:
        """The module's parameters, by their names within it (dotted below it: encoder.layers.0.linear1.weight)."""
        return {name: self._tensors[id(p)] for name, p in module.named_parameters()}


class Unread:
    """A result of an operation that symprop does not read (torch.max(x, dim)'s indices): the operation that reads it
    is refused with `message`."""

    def __init__(self, message: str):
        self.message = message


def fail(message: str) -> SymPropError:
    """A SymPropError located at the line of the user's code (forward, a loss) that led here, if any."""
    return SymPropError(message, user_location())


def user_location(frame=None) -> str:
    """'forward (net.py:12)': the innermost frame outside symprop, up to where symprop started tracing."""
    frame = frame or sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_traced" and code.co_filename.startswith(_PACKAGE):
            return ""
        if not code.co_filename.startswith(_PACKAGE) and _TORCH not in code.co_filename:
            return f"{code.co_name} ({Path(code.co_filename).name}:{frame.f_lineno})"
        frame = frame.f_back
    return ""


def traceback_location(error: BaseException) -> str:
    """The innermost frame of the user's code in an exception's traceback."""
    found, tb = "", error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_PACKAGE):
            found = f"{code.co_name} ({Path(code.co_filename).name}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found
