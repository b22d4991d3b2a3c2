"""TOML specs: the same models as the Python API, read from a file.

A spec is a list of layers, each applied to what the layer before it gave (a Sequential). Keys
in a layer's table wire a graph instead:
- `name = "fc1"` names the layer's output, for later layers to read, and its parameters (fc1.weight);
- `input = "u"` applies the layer to a named input or layer output, not to the layer before;
- `add = "x"` (or a list) adds named values to the layer's output: a residual connection;
- `use = "fc1"`, in place of `type`, applies the named layer again, with the same parameters;
- `type = "add"` or `type = "cat"`, with `inputs = [...]`, sums or concatenates named values.
Inputs are `inputs = 6` (one input, x), `inputs = [1, 32, 32]` (images: channels, height, width, for convolutions)
or a table `[inputs]` of named widths; a token model has
`vocabulary = V` and `sequence = S` instead (x holds (batch, S) integer ids in [0, V)); `l2` in `[loss]` adds
weight·Σ p² for each named parameter.

Every error names the file and the key: `examples/x.toml: layers[2].expr: ...`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import SymPropError
from ..ops.loss import REDUCTIONS, Loss
from ..ops.registry import by_torch_function, losses, meaning, toml_layers
from . import model as m
from .module import Module, Sequential
from .options import Table, positive, short
from .tensor import SymbolicTensor
from .trace import running

_TOP_KEYS = {"name", "inputs", "vocabulary", "sequence", "layers", "loss"}
WIRING_KEYS = {
    "name": "names the layer's output and its parameters (name.weight)",
    "input": "a named input or layer to apply the layer to (default: the layer before)",
    "add": "named values added to the layer's output (a residual connection)",
    "use": "applies the named layer again, with the same parameters (in place of type)",
    "inputs": "with type add or cat: the named values to sum or to concatenate on the last axis",
}
_COMBINE = ("add", "cat")
MAX_SPEC_BYTES = 1_000_000


def load(path: str | Path) -> m.Model:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)  # /dev/zero would never end
        if len(data) > MAX_SPEC_BYTES:
            raise SymPropError(f"is larger than {MAX_SPEC_BYTES // 1000} kB, which no spec is", str(path))
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SymPropError("no such file", str(path)) from None
    except IsADirectoryError:
        raise SymPropError("is a folder, not a TOML spec", str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SymPropError(f"cannot be read: {error}", str(path)) from None
    try:
        return loads(text, source=str(path))
    except SymPropError as error:
        raise error.at(str(path)) from None


def loads(text: str, source: str = "<spec>") -> m.Model:
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as error:  # ValueError: an integer of over 4300 digits
        raise SymPropError(f"malformed TOML: {_one_line(error)}") from None
    _no_unknown(data, _TOP_KEYS, "")
    top = Table(data, "")
    name = top.string("name")
    sequence = top.get("sequence", positive) if "sequence" in data else None
    if "vocabulary" in data:  # a token model: x holds ids in [0, vocabulary), (batch, sequence) of them
        if "inputs" in data or sequence is None:
            raise SymPropError("a token model takes vocabulary and sequence, not inputs", "vocabulary")
        inputs = {"x": top.get("vocabulary", positive)}
    else:
        inputs = _inputs(data)
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        raise SymPropError("missing or empty: give the network as [[layers]] tables", "layers")
    net = _network(layers, inputs, sequence)
    loss_spec = data.get("loss")
    if not isinstance(loss_spec, dict):
        raise SymPropError("missing: give the loss as a [loss] table", "loss")
    loss = _loss(loss_spec, net)
    try:
        given = {"x": (sequence,)} if "vocabulary" in data else \
            inputs if len(inputs) > 1 or "x" not in inputs or isinstance(inputs["x"], tuple) else inputs["x"]
        return m.Model(net, loss, name=name, inputs=given, source=source,
                       sequence=None if "vocabulary" in data else sequence)
    except SymPropError as error:
        raise (error if error.where else error.at("layers")) from None


def _inputs(data: dict) -> dict[str, int | tuple]:
    value = data.get("inputs")
    if isinstance(value, list):  # images: inputs = [channels, height, width] (or [channels, length])
        if len(value) not in (2, 3) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            raise SymPropError(f"must be a width, or [channels, height, width] for images (or [channels, length]), "
                               f"got {short(value)}", "inputs")
        return {"x": tuple(value)}
    if isinstance(value, dict):
        if not value:
            raise SymPropError("is empty: give each input a width, as x = 6", "inputs")
        table = Table(value, "inputs")
        return {key: table.get(key, positive) for key in value}
    return {"x": Table(data, "").get("inputs", positive)}


class SpecNet(Module):
    """The network a spec wires as a graph: named layers, inputs and residual additions."""

    def __init__(self, inputs: list[str], steps: list[dict]):
        super().__init__()
        self.input_names, self.steps = inputs, steps

    def forward(self, *inputs):
        values = dict(zip(self.input_names, inputs, strict=True))
        flowing = inputs[0]
        for i, step in enumerate(self.steps):
            try:
                if step["kind"] == "add":
                    flowing = _sum([values[n] for n in step["inputs"]])
                elif step["kind"] == "cat":
                    joined = meaning(by_torch_function("torch.cat"), "torch.cat")
                    flowing = joined([values[n] for n in step["inputs"]], dim=-1)
                else:
                    flowing = self._modules[step["module"]](values[step["input"]] if step["input"] else flowing)
                flowing = _sum([flowing] + [values[n] for n in step["add"]])
            except SymPropError as error:
                raise (error if error.where else error.at(f"layers[{i}]")) from None
            if step["name"]:
                values[step["name"]] = flowing
                module = self._modules.get(step["module"])
                if isinstance(flowing, SymbolicTensor) and not (module and module._parameters):
                    running().graph.rename(flowing.value, step["name"])  # h1, not h_h1, for `name = "h1"`
        return flowing

    def describe(self) -> str:
        parts = []
        for step in self.steps:
            if step["kind"] in _COMBINE:
                text = f"{step['kind']}({', '.join(step['inputs'])})"
            else:
                text = self._modules[step["module"]].describe() if step["kind"] != "use" else f"{step['module']} again"
                text = f"{step['input']} -> {text}" if step["input"] else text
            text += "".join(f" + {n}" for n in step["add"])
            parts.append(f"{step['name']} = {text}" if step["name"] else text)
        return "Graph(" + "; ".join(parts) + ")"


def _sum(values):
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def _network(layers: list[dict], inputs: dict[str, int], sequence: int | None = None) -> Module:
    """A Sequential when no table wires a graph; else a SpecNet."""
    if not any(_wiring(spec) for spec in layers):
        if "x" not in inputs and len(inputs) > 1:
            raise SymPropError(f"{len(inputs)} inputs, but no layer reads one by name: give the layers that read "
                               "them input = \"name\"", "layers")
        built, width = [], inputs.get("x", next(iter(inputs.values())))
        for i, spec in enumerate(layers):
            layer = _layer(spec, i, width, sequence)
            width = _output_width(layer, width, f"layers[{i}]")
            built.append(layer)
        return Sequential(*built)
    widths = dict(inputs)  # the width of every named value
    steps, modules, width = [], {}, next(iter(inputs.values()))
    for i, spec in enumerate(layers):
        where = f"layers[{i}]"
        table = Table(spec, where)
        name = table.string("name", "")
        if name and (not name.isidentifier() or name in widths):
            why = "is taken" if name in widths else "must be an identifier"
            raise SymPropError(f"{short(name)} {why}", f"{where}.name")
        add = _names(table, "add", widths)
        step = {"name": name, "add": add, "input": "", "inputs": (), "module": ""}
        if "use" in spec:
            _only(spec, {"use", "name", "input", "add"}, where, "use")
            step["kind"], step["module"] = "use", table.string("use")
            if step["module"] not in modules:
                raise SymPropError(f"no layer named {short(step['module'])} before this one", f"{where}.use")
            step["input"] = _names(table, "input", widths, single=True)
            width = _output_width(modules[step["module"]], widths[step["input"]] if step["input"] else width, where)
        elif spec.get("type") in _COMBINE:
            _only(spec, {"type", "name", "inputs", "add"}, where, spec["type"])
            step["kind"], step["inputs"] = spec["type"], _names(table, "inputs", widths)
            if len(step["inputs"]) < 2:
                raise SymPropError("name at least two values to combine", f"{where}.inputs")
            given = [widths[n] for n in step["inputs"]]
            width = sum(given) if spec["type"] == "cat" else max(given)
        else:
            step["input"] = _names(table, "input", widths, single=True)
            plain = {key: value for key, value in spec.items() if key not in ("name", "input", "add")}
            layer = _layer(plain, i, widths[step["input"]] if step["input"] else width, sequence)
            step["kind"], step["module"] = "layer", name or str(i)
            modules[step["module"]] = layer
            width = _output_width(layer, widths[step["input"]] if step["input"] else width, where)
        if name:
            widths[name] = width
        steps.append(step)
    net = SpecNet(list(inputs), steps)
    for key, layer in modules.items():
        net.add_module(key, layer)
    return net


def _wiring(spec: dict) -> bool:
    return any(key in spec for key in ("name", "input", "add", "use")) or spec.get("type") in _COMBINE


def _names(table: Table, key: str, known: dict, single: bool = False):
    """The named values a key refers to: one name, or a list of names (each one known already)."""
    if key not in table.data:
        return "" if single else ()
    value = table.data[key]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or (single and len(names) != 1):
        raise SymPropError(f"must be {'a name' if single else 'a name or a list of names'}, got {short(value)}",
                           table.at(key))
    for n in names:
        if n not in known:
            raise SymPropError(f"{short(n)} names no input and no layer before this one; known: "
                               f"{', '.join(known)}", table.at(key))
    return names[0] if single else tuple(names)


def _only(spec: dict, allowed: set, where: str, kind: str):
    for key in spec:
        if key not in allowed:
            raise SymPropError(f"{key} does not go with {kind}; this table takes {', '.join(sorted(allowed))}",
                               f"{where}.{key}")


def _output_width(layer, width, where: str):
    """What a layer makes of `width`; a window that fits nowhere (a kernel larger than the image) is the layer's."""
    out = layer.output_width(width)
    if isinstance(out, tuple) and 0 in out:
        raise SymPropError(f"{layer.describe()} makes an output of shape {out} from an input of {tuple(width)}: its "
                           "window does not fit (a kernel larger than the input, with its padding and dilation)", where)
    return out


def _layer(spec: dict, i: int, width: int, sequence: int | None = None):
    """The layer a [[layers]] table declares; `width` is the width of what flows into it (a token model's
    vocabulary, for its embedding)."""
    where = f"layers[{i}]"
    kind = Table(spec, where).string("type")  # the type first: what keys a table may have depends on it
    types = toml_layers()
    if kind not in types:
        raise SymPropError(f"unknown layer type {short(kind)}{_nearest(kind, [*types, *_COMBINE])}; known: "
                           f"{', '.join((*types, *_COMBINE))}", f"{where}.type")
    layer_type = types[kind]
    for key in spec:
        if key != "type" and key not in layer_type.toml_keys:
            owners = [k for k, layer in types.items() if key in layer.toml_keys]
            takes = f"{kind} takes {', '.join(layer_type.toml_keys)}" if layer_type.toml_keys else \
                f"{kind} takes no keys but type"
            name = key if key.isidentifier() else repr(key)
            if owners:
                raise SymPropError(f"{key} belongs to {' and '.join(owners)} layers only; {takes}",
                                   f"{where}.{name}")
            if key in WIRING_KEYS:
                raise SymPropError(f"{key} goes with add or cat layers only; {takes}", f"{where}.{name}")
            raise SymPropError(f"unknown key{_nearest(key, layer_type.toml_keys)}; {takes}", f"{where}.{name}")
    try:
        return layer_type.from_toml(Table(spec, where, sequence), width)
    except SymPropError as error:
        key = layer_type.toml_keys[0] if layer_type.toml_keys else "type"
        raise (error if error.where else error.at(f"{where}.{key}")) from None


def _loss(spec: dict, net: Module):
    types = losses()
    _no_unknown(spec, {"type", "l2", "reduction", "target"}.union(*(cls.toml_keys for cls in types.values())), "loss")
    table = Table(spec, "loss")
    kind = table.string("type")
    if kind not in types:
        raise SymPropError(f"unknown loss type {kind!r}; known: {', '.join(types)}", "loss.type")
    cls = types[kind]
    for key in spec:
        if key not in ("type", "l2", "reduction", "target", *cls.toml_keys):
            owners = [k for k, other in types.items() if key in other.toml_keys]
            raise SymPropError(f"{key} belongs to {' and '.join(owners)} losses only, not {kind}", f"loss.{key}")
    target = spec.get("target")
    if target is not None and target not in cls.toml_targets:
        allowed = cls.toml_targets
        fits = f"it takes target = {' or '.join(map(repr, allowed))}" if allowed else \
            "its target has the output's shape, so leave target out"
        raise SymPropError(f"target {short(target)} does not fit loss {kind!r}: {fits}", "loss.target")
    try:
        loss = cls.from_toml(table)
    except SymPropError as error:
        raise (error if error.where else error.at(f"loss.{(*cls.toml_keys, 'reduction')[0]}")) from None
    return _penalized(loss, spec.get("l2"), net) if "l2" in spec else loss


def _penalized(loss, weights, net: Module):
    if not isinstance(weights, dict) or not weights:
        raise SymPropError(f"must be a table of parameter = weight, as {{\"0.weight\" = 0.01}}, got {short(weights)}",
                           "loss.l2")
    parameters = dict(net.named_parameters())
    chosen = {}
    for key, weight in weights.items():
        if key not in parameters:
            raise SymPropError(f"no parameter {short(key)}; the parameters are {', '.join(parameters)}",
                               f"loss.l2.{key}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < float("inf"):
            raise SymPropError(f"must be a positive number, got {short(weight)}", f"loss.l2.{key}")
        chosen[key] = (parameters[key], float(weight))
    return L2Penalty(loss, chosen)


class L2Penalty(Loss):
    """A loss plus weight·Σ p² for each of some parameters: what TOML's `l2 = {"fc1.weight" = 0.01}` declares."""

    def __init__(self, loss: Loss, weights: dict):
        super().__init__(loss.reduction if loss.reduction in REDUCTIONS else "mean")
        self.loss, self.weights, self.target = loss, dict(weights), loss.target  # {key: (Parameter, weight)}
        self.target_domain, self.decision = loss.target_domain, loss.decision

    def forward(self, y, t):
        total = self.loss(y, t)
        for parameter, weight in self.weights.values():
            total = total + weight * (parameter ** 2).sum()
        return total

    def torch_twin(self):
        return None  # forward runs in torch itself

    def textbook(self) -> tuple[str, str]:
        formula, safeguard = self.loss.textbook()
        names = [rf"{weight:g} \sum \texttt{{{key.replace('_', chr(92) + '_')}}}^{{2}}"
                 for key, (_, weight) in self.weights.items()]
        return (" + ".join([formula, *names]) if formula else "", safeguard)

    def describe(self) -> str:
        penalties = [f"{weight:g} * ({key} ** 2).sum()" for key, (_, weight) in self.weights.items()]
        return " + ".join([self.loss.describe(), *penalties])


def _no_unknown(table: dict, known: set, where: str):
    for key in table:
        if key not in known:
            hint = _nearest(key, sorted(known))
            key = key if key.isidentifier() else repr(key)  # a quoted key may hold a newline
            full = f"{where}.{key}" if where else key
            raise SymPropError(f"unknown key{hint}; expected one of {', '.join(sorted(known))}", full)


def _nearest(word, choices) -> str:
    """ (did you mean outputs?)" for a near miss; "" when nothing is near."""
    import difflib

    found = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def _one_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
