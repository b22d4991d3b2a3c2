"""Notes for the reader: what a derivation found, simplified or suspects, said in words (warnings and notes on the
command line) and in LaTeX (the document). Each kind is defined where it is made: by a simplification, or by the op
whose derivation makes it; `Graph.note` records one with the names it is about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    text: str  # str.format'ed with the names the note is about
    latex: str  # the same for the document (names as LaTeX math, or for a warning as escaped text)
    warning: bool = False  # a likely mistake in the model (the derivation is still right for what was declared)


NOTES: dict[str, Note] = {}


def define(kind: str, text: str, latex: str, warning: bool = False) -> str:
    if kind in NOTES and NOTES[kind] != Note(text, latex, warning):  # two ops' notes under one name: one lost
        raise ValueError(f"the note {kind!r} is defined twice")
    NOTES[kind] = Note(text, latex, warning)
    return kind
