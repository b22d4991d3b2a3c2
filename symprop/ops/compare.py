"""compare: x > y, x < y, x >= y, x <= y, x == y, x != y elementwise, as 1 where it holds and 0 elsewhere (torch's
booleans, as numbers of the arrays' dtype), and ~, &, | of such masks: what torch.where, masked_fill and products
read. A mask is a step: its derivative is 0, and where/masked_fill follow the branch that the relation picks, as
torch's where does (at y = 0, where(y > 0, y, 0.1 y) is 0.1 y's)."""

from __future__ import annotations

import operator

import sympy as sp

from ..declare.calls import in_torch, resolved
from ..declare.tensor import elementwise
from .registry import TorchNames, defop

RELATIONS = {"gt": sp.StrictGreaterThan, "lt": sp.StrictLessThan, "ge": sp.GreaterThan, "le": sp.LessThan,
             "eq": sp.Eq, "ne": sp.Ne}


def indicator(relation) -> sp.Expr:
    """1 where `relation` holds, else 0."""
    return sp.Piecewise((1, relation), (0, True))


def condition(mask: sp.Expr):
    """The relation that a mask holds: an indicator's own, else mask ≠ 0."""
    if isinstance(mask, sp.Piecewise) and len(mask.args) == 2 and mask.args[0].expr == 1 and \
            mask.args[1].expr == 0 and mask.args[1].cond == sp.true:
        return mask.args[0].cond
    return sp.Ne(mask, 0)


def _compare(kind: str):
    def compare(input, other):
        input, other = resolved(input), resolved(other)
        if in_torch(input, other):
            return getattr(operator, kind)(input, other)
        return elementwise(lambda a, b: indicator(RELATIONS[kind](a, b)), (input, other), kind)

    compare.__name__ = kind
    return compare


def _logical(kind: str):
    combine = {"not": lambda a: indicator(sp.Not(condition(a))),
               "and": lambda a, b: indicator(sp.And(condition(a), condition(b))),
               "or": lambda a, b: indicator(sp.Or(condition(a), condition(b)))}[kind]

    def logical(*masks):
        masks = tuple(resolved(m) for m in masks)
        if in_torch(*masks):
            return {"not": operator.invert, "and": operator.and_, "or": operator.or_}[kind](*masks)
        return elementwise(combine, masks, kind)

    return logical


FRONT = {}
for _kind in RELATIONS:
    for _name in (f"torch.{_kind}", _kind, f"aten.{_kind}.Scalar", f"aten.{_kind}.Tensor"):
        FRONT[_name] = _compare(_kind)
for _kind, _names in (("not", ("torch.logical_not", "logical_not", "aten.logical_not.default",
                               "aten.bitwise_not.default")),
                      ("and", ("torch.logical_and", "logical_and", "aten.logical_and.default",
                               "aten.bitwise_and.Tensor")),
                      ("or", ("torch.logical_or", "logical_or", "aten.logical_or.default", "aten.bitwise_or.Tensor"))):
    FRONT.update({name: _logical(_kind) for name in _names})

defop("compare", front=FRONT,
      torch=TorchNames(tuple(n for n in FRONT if n.startswith("torch.")),
                       tuple(n for n in FRONT if "." not in n),
                       "", tuple(n for n in FRONT if n.startswith("aten."))))
