"""TOML specs: the same models as the Python API, read from a file.

Every error names the file and the key: `examples/x.toml: layers[2].expr: ...`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import SymPropError
from . import model as m

_TOP_KEYS = {"name", "inputs", "sequence", "layers", "loss"}
# The keys each layer type takes besides `type`; a layer's width comes from the layer before it.
_LAYER_OPTIONS = {"linear": ("outputs", "bias"), "elementwise": ("expr",), "layer_norm": ("eps", "elementwise_affine"),
                  "transformer_encoder": ("nhead", "dim_feedforward", "activation", "norm_first", "causal", "eps")}
_LAYER_KEYS = {"type"} | {key for keys in _LAYER_OPTIONS.values() for key in keys}
_LOSS_KEYS = {"type", "target", "reduction", "expr"}
MAX_WIDTH = 2**31 - 1  # inputs and outputs; far past what any array could hold


def load(path: str | Path) -> m.Model:
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
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
    name = _get(data, "name", str, "")
    inputs = _get(data, "inputs", int, "")
    sequence = _get(data, "sequence", int, "") if "sequence" in data else None
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        raise SymPropError("missing or empty: give the network as [[layers]] tables", "layers")
    built, width = [], inputs
    for i, spec in enumerate(layers):
        layer = _layer(spec, i, width)
        width = getattr(layer, "out_features", width)
        built.append(layer)
    loss_spec = data.get("loss")
    if not isinstance(loss_spec, dict):
        raise SymPropError("missing: give the loss as a [loss] table", "loss")
    loss = _loss(loss_spec)
    try:
        return m.Model(m.Sequential(*built), loss, name=name, inputs=inputs, source=source, sequence=sequence)
    except SymPropError as error:
        raise (error if error.where else error.at("layers")) from None


def _layer(spec: dict, i: int, width: int):
    """The layer a [[layers]] table declares; `width` is the width of what flows into it."""
    where = f"layers[{i}]"
    _no_unknown(spec, _LAYER_KEYS, where)
    kind = _get(spec, "type", str, where)
    if kind not in m.LAYER_TYPES:
        raise SymPropError(f"unknown layer type {kind!r}; known: {', '.join(m.LAYER_TYPES)}", f"{where}.type")
    for key in spec:
        if key != "type" and key not in _LAYER_OPTIONS.get(kind, ()):
            owners = [k for k, keys in _LAYER_OPTIONS.items() if key in keys]
            raise SymPropError(f"{key} belongs to {' and '.join(owners)} layers only, not {kind}", f"{where}.{key}")
    try:
        if kind == "linear":
            return m.Linear(width, _get(spec, "outputs", int, where), _flag(spec, "bias", True, where))
        if kind == "elementwise":
            return m.Elementwise(_get(spec, "expr", str, where))
        if kind == "layer_norm":
            return m.LayerNorm(width, _number(spec, "eps", 1e-5, where), _flag(spec, "elementwise_affine", True, where))
        if kind == "transformer_encoder":
            activation = _get(spec, "activation", str, where) if "activation" in spec else "relu"
            if activation not in ("relu", "gelu"):
                raise SymPropError(f"must be relu or gelu, got {_short(activation)}", f"{where}.activation")
            return m.TransformerEncoderLayer(
                width, _get(spec, "nhead", int, where),
                _get(spec, "dim_feedforward", int, where) if "dim_feedforward" in spec else 2048, activation,
                _flag(spec, "norm_first", False, where), _flag(spec, "causal", False, where),
                _number(spec, "eps", 1e-5, where))
        return m.LAYER_TYPES[kind]()
    except SymPropError as error:
        key = {"elementwise": "expr", "transformer_encoder": "nhead", "layer_norm": "eps"}.get(kind, "type")
        raise (error if error.where else error.at(f"{where}.{key}")) from None


def _flag(spec: dict, key: str, default: bool, where: str) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise SymPropError(f"must be true or false, got {_short(value)}", f"{where}.{key}")
    return value


def _number(spec: dict, key: str, default: float, where: str) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise SymPropError(f"must be a number between 0 and 1, got {_short(value)}", f"{where}.{key}")
    return float(value)


def _loss(spec: dict):
    _no_unknown(spec, _LOSS_KEYS, "loss")
    kind = _get(spec, "type", str, "loss")
    if kind not in m.LOSS_TYPES:
        raise SymPropError(f"unknown loss type {kind!r}; known: {', '.join(m.LOSS_TYPES)}", "loss.type")
    cls = m.LOSS_TYPES[kind]
    reduction = spec.get("reduction", "mean")
    target = spec.get("target")
    if "expr" in spec and kind != "elementwise":
        raise SymPropError(f"expr belongs to elementwise losses only, not {kind}", "loss.expr")
    if target is not None:
        allowed = {"cross_entropy": ("index", "probs"), "nll": ("index",)}.get(kind, ())
        if target not in allowed:
            fits = f"it takes target = {' or '.join(map(repr, allowed))}" if allowed else \
                "its target has the output's shape, so leave target out"
            raise SymPropError(f"target {_short(target)} does not fit loss {kind!r}: {fits}", "loss.target")
    try:
        if kind == "elementwise":
            return cls(_get(spec, "expr", str, "loss"), reduction=reduction)
        if kind == "cross_entropy":
            return cls(reduction=reduction, target=target or "index")
        return cls(reduction=reduction)
    except SymPropError as error:
        raise (error if error.where else error.at("loss.expr" if kind == "elementwise" else "loss.reduction")) from None


def _get(table: dict, key: str, kind: type, where: str):
    full = f"{where}.{key}" if where else key
    if key not in table:
        raise SymPropError("missing", full)
    value = table[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SymPropError(f"must be a positive integer, got {_short(value)}", full)
    if kind is int and value > MAX_WIDTH:
        raise SymPropError(f"must be at most {MAX_WIDTH}, got {_short(value)}", full)
    if kind is str and not isinstance(value, str):
        raise SymPropError(f"must be a string, got {_short(value)}", full)
    return value


def _no_unknown(table: dict, known: set, where: str):
    for key in table:
        if key not in known:
            key = key if key.isidentifier() else repr(key)  # a quoted key may hold a newline
            full = f"{where}.{key}" if where else key
            raise SymPropError(f"unknown key; expected one of {', '.join(sorted(known))}", full)


def _short(value) -> str:
    """repr(value) for an error message, cut short: a TOML value may be an array of thousands."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _one_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
