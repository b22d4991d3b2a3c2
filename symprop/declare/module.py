"""Modules, as torch.nn has them: subclass Module, assign submodules and Parameters in __init__, write forward.

A module's parameters are named by their attribute paths, as torch's state_dict names them
(`fc1.weight`, `0.bias`), and a module or Parameter reachable by two paths is one, named by the
first, as in torch. Calling a module runs its forward in the interpretation running: a graph
trace, or torch (built-in layers then run as their torch.nn twins).
"""

from __future__ import annotations

from ..errors import SymPropError
from .tensor import Parameter
from .trace import GraphTrace, TorchRun, fail, running


class Module:
    """The base of every layer and network."""

    from_torch = None  # on a layer that torch.nn has too: a classmethod, the layer that a torch module is
    # a layer that torch calls with masks: (the flag that says a mask is causal, the mask, the arguments refused)
    torch_masks: tuple = ()
    most_in_a_model: int | None = None  # a layer this costly to derive: at most this many in one model

    def __init__(self):
        self.__dict__.setdefault("_modules", {})
        self.__dict__.setdefault("_parameters", {})

    @property
    def _modules(self) -> dict:
        return self.__dict__.setdefault("_modules", {})

    @property
    def _parameters(self) -> dict:
        return self.__dict__.setdefault("_parameters", {})

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __getattr__(self, name):  # submodules and parameters added by name (add_module("0", ...)), as in torch
        for table in ("_modules", "_parameters"):
            found = self.__dict__.get(table, {})
            if name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def add_module(self, name: str, module: Module) -> None:
        """A submodule under any name, "0" too (Sequential's)."""
        self._modules[name] = module

    def register_parameter(self, name: str, parameter: Parameter | None) -> None:
        """A parameter under any name, dotted too ("self_attn.in_proj_weight", as torch names it)."""
        if parameter is not None:
            self._parameters[name] = parameter

    # -- what it holds ------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None):
        """(path, module) for this module and every submodule, each once, depth first (torch's order)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def named_parameters(self):
        """(state_dict key, Parameter), each parameter once, under its first path."""
        seen = set()
        for path, module in self.named_modules():
            for name, parameter in module._parameters.items():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield (f"{path}.{name}" if path else name), parameter

    def parameters(self):
        for _, parameter in self.named_parameters():
            yield parameter

    def tied_keys(self) -> dict[str, str]:
        """{key: first key} for each further key of a parameter held under several (tied weights, as nanoGPT ties
        its lm_head to the token embedding)."""
        first: dict[int, str] = {}
        tied = {}
        for path, module in self.named_modules():
            for name, parameter in module._parameters.items():
                key = f"{path}.{name}" if path else name
                if first.setdefault(id(parameter), key) != key:
                    tied[key] = first[id(parameter)]
        return tied

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict keys and shapes of the source module's buffers (constants of the derivation)."""
        return {}

    def children(self):
        return iter(self._modules.values())

    # -- calling ------------------------------------------------------------------------------
    def forward(self, *inputs):
        raise fail(f"{type(self).__name__} has no forward method: define forward(self, ...) as in torch")

    def __call__(self, *inputs, **kwargs):
        interpretation = running()
        if isinstance(interpretation, GraphTrace):
            with interpretation.scope(self):
                result = self.forward(*inputs, **kwargs)
            if isinstance(result, Parameter):
                result = result.resolve()
            interpretation.called(self, result)
            return result
        if isinstance(interpretation, TorchRun):
            twin = interpretation.twin_of(self)
            if twin is None:
                return self.forward(*inputs, **kwargs)
            from torch.func import functional_call

            tensors = interpretation.tensors_of(self)
            dtype = next(iter(tensors.values())).dtype if tensors else inputs[0].dtype
            return functional_call(twin.to(dtype), tensors, inputs, kwargs)
        raise SymPropError(f"{type(self).__name__} is called outside a model: symprop calls it while it traces "
                           "a Model (symprop.derive_network), or runs it in torch (symprop.check)")

    def torch_twin(self):
        """The torch.nn module that computes the same (built-in layers); None: run forward in torch."""
        return None

    # -- how it reads -------------------------------------------------------------------------
    def symbol_stem(self, name: str, tag: str) -> str | None:
        """The variable name of parameter `name` in generated code (w0 for layer 0's weight); None: its path."""
        return None

    def describe(self) -> str:
        """One line for summaries: Linear(4, 16), or Net(fc1: Linear(6, 6), ...)."""
        parts = [f"{name}: {module.describe()}" for name, module in self._modules.items()]
        parts += [f"{name}: {parameter.shape}" for name, parameter in self._parameters.items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __repr__(self):
        return self.describe()


class Sequential(Module):
    """Layers applied in order, numbered from 0 as in torch.nn.Sequential."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise SymPropError(f"layer {i}: {layer!r} is not a symprop layer")
            self.add_module(str(i), layer)

    @property
    def layers(self) -> tuple:
        return tuple(self._modules.values())

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return self.layers[i]

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            try:
                x = layer(x)
            except SymPropError as error:
                raise (error if error.where else error.at(f"layers[{i}]")) from None
        return x

    def describe(self) -> str:
        return f"Sequential({', '.join(layer.describe() for layer in self.layers)})"

