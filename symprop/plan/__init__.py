"""Stage 5, plan: the program as code runs it, between the schedule and the printers.

It decides the order of the statements, what is computed again rather than kept (weighing each op's cost against the
memory it frees), which arrays a value is computed into, and when each is freed; it hands the printers a finished,
backend-neutral list of steps (`symprop.program.Step`), which they only spell. Each backend says what it can do
(`Options`): NumPy reuses arrays everywhere, torch only in loss_and_gradients (autograd may run through forward and
loss); an op whose whole computation is one call of the backend's rewrites the program to make it that call (its plan
rule, `registry.PLAN_RULES`). The document keeps the program as derived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..ops.registry import LAYOUT_RULES, PLAN_RULES, SPELLING_RULES
from ..program import Plan, Program
from .chunks import chunk_copies
from .lines import lay_out
from .recompute import recompute_late_reads, recompute_outgrown
from .rewrites import (
    factor_out_of_sums,
    inline_parts_read_once,
    merge_scaled_terms,
    read_quotients,
    reductions_early,
    scale_smaller_operands,
)
from .uses import Uses, nonnegative


@dataclass(frozen=True)
class Options:
    """What a backend's code can do."""

    backend: str  # the name ops spell their functions for: their in-place calls and costs are this backend's
    reuse: bool = True  # compute into the arrays of values read for the last time
    free: bool = True  # free each batch-sized array after its last read
    chunk: bool = False  # compute a line that copies much more than it makes a chunk of samples at a time
    fused_multiply_add: bool = False  # a + c·a·b is one kernel (torch.addcmul): c·a·(b + k) is printed as one


def plan(program: Program, options: Options) -> Plan:
    """The steps that compute `program` (a Program of the schedule) as `options`' backend runs them."""
    statements = reductions_early([replace(s) for s in program.statements])
    outputs = [replace(s) for s in program.outputs]
    shapes = dict(program.shapes)
    uses = Uses(statements, outputs)
    scale_smaller_operands(uses)
    read_quotients(uses)
    factor_out_of_sums(uses, shapes)
    if options.fused_multiply_add:  # where c·a·b added into an array is one kernel
        inline_parts_read_once(uses, shapes)
    merge_scaled_terms(uses, shapes)
    for rule in PLAN_RULES:
        uses = rule(uses, shapes, options.backend)
    uses = recompute_outgrown(uses, shapes)
    recompute_late_reads(uses, shapes, options.backend)
    for rule in LAYOUT_RULES + SPELLING_RULES:
        uses = rule(uses, shapes, options.backend)
    planned = replace(program, statements=uses.statements, outputs=outputs, shapes=shapes)
    steps = lay_out(planned, options)
    return Plan(planned, chunk_copies(planned, steps) if options.chunk else steps, nonnegative(planned))


__all__ = ["Options", "plan"]
