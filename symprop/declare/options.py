"""Checking declared options, from Python and from TOML alike: one message per kind of mistake."""

from __future__ import annotations

from ..errors import SymPropError

MAX_WIDTH = 2**31 - 1  # widths; far past what any array could hold
MISSING = object()


def short(value) -> str:
    """repr(value) for an error message, cut short: a TOML value may be an array of thousands."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def positive(value, name: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SymPropError(f"{name + ' ' if name else ''}must be a positive integer, got {short(value)}")
    if value > MAX_WIDTH:
        raise SymPropError(f"{name + ' ' if name else ''}must be at most {MAX_WIDTH}, got {short(value)}")
    return value


def integer(value, name: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SymPropError(f"{name + ' ' if name else ''}must be an integer, got {short(value)}")
    return value


def flag(value, name: str = "") -> bool:
    if not isinstance(value, bool):
        raise SymPropError(f"{name + ' ' if name else ''}must be true or false, got {short(value)}")
    return value


def fraction(value, name: str = "") -> float:
    """A number strictly between 0 and 1 (an epsilon)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise SymPropError(f"{name + ' ' if name else ''}must be a number between 0 and 1, got {short(value)}")
    return float(value)


def choice(value, allowed: tuple, name: str = "") -> str:
    if value not in allowed:
        raise SymPropError(f"{name + ' ' if name else ''}must be {' or '.join(allowed)}, got {short(value)}")
    return value


class Table:
    """A TOML table read with checks; every error names its key: layers[2].outputs: must be ..."""

    def __init__(self, data: dict, where: str, sequence: int | None = None):
        self.data, self.where = data, where
        self.sequence = sequence  # the model's sequence length, for a layer that needs it (positions)

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, check, default=MISSING, *args):
        if key not in self.data:
            if default is MISSING:
                raise SymPropError("missing", self.at(key))
            return default
        try:
            return check(self.data[key], *args)
        except SymPropError as error:
            raise SymPropError(error.message, self.at(key)) from None

    def string(self, key: str, default=MISSING) -> str:
        return self.get(key, _string, default)


def _string(value) -> str:
    if not isinstance(value, str):
        raise SymPropError(f"must be a string, got {short(value)}")
    return value
