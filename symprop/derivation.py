"""The pipeline in one object: declare → graph → derive → simplify → print → render."""

from __future__ import annotations

import sympy as sp

from .backends import BACKENDS, default_targets
from .declare.model import Model
from .derive import backward
from .notes import NOTES
from .ops.registry import STATE_RULES
from .program import Program
from .schedule import schedule
from .second_order import directions, gauss_newton_vector, hessian_vector
from .textbook_hessian import output_hessian


class Derivation:
    """A model's loss and the closed form of its gradient for every parameter."""

    def __init__(self, model: Model, book: bool = False, hvp: bool = False):
        self.model, self.book, self._book, self.hvp = model, book, None, hvp
        self.hessian_form = None  # the Hessian in closed form, where hvp is derived for a one-layer model
        self.lowered = lowered = model.trace(book)
        self.digest = model.digest(lowered)  # before the backward pass adds to the graph
        graph, loss, output = lowered.graph, lowered.loss, lowered.output
        self._forward_names = {t.name for t in graph.tensors.values()} | set(graph.labels.values())
        cotangents = backward(graph, loss, list(lowered.params.values()))
        self.gradients = {key: cotangents[tensor] for key, tensor in lowered.params.items()}
        # what layers update in training mode besides the parameters: a batch norm's batch statistics, which the code
        # moves its running statistics toward
        self.statistics = [result for rule in STATE_RULES for result in rule(graph)]
        results = [("L", loss.expr, ())] + [(k, v.expr, v.shape) for k, v in self.gradients.items()]
        self.programs: dict[str, Program] = {
            "forward": schedule(graph, [("y", output.expr, output.shape)]),
            "loss": schedule(graph, [("L", loss.expr, ())]),
            "loss_and_gradients": schedule(graph, results),
        }
        # the code's loss_and_gradients: the documents' program, and the batch statistics after the gradients
        self.code_programs = dict(self.programs)
        self.code_names: dict[str, dict] = {}  # a code program's own {symbol: state_dict key}, where it has one
        if self.statistics:
            self.code_programs["loss_and_gradients"] = schedule(
                graph, results + [(k, v.expr, v.shape) for k, v in self.statistics])
            if not model.random_inputs:  # eval mode, the running statistics given, as after model.eval() in torch
                evaluated = model.trace(running_inputs=True)
                self.code_programs["forward_eval"] = schedule(
                    evaluated.graph, [("y", evaluated.output.expr, evaluated.output.shape)])
                self.code_names["forward_eval"] = {t.symbol: key for key, t in
                                                   {**evaluated.params, **evaluated.buffers}.items()}
        if hvp:
            self._second_order(graph, lowered.params)

    def _second_order(self, graph, params: dict) -> None:
        """The code's hvp and, where the loss reads no parameter, ggn_vp (second_order.py)."""
        # The document's record of the first derivation (its chain rule, its notes) stays as it is: the second
        # order's own runs of reverse mode would add to it
        chain, notes = {symbol: list(parts) for symbol, parts in graph.chain.items()}, list(graph.notes)
        along = directions(graph, params)
        names = {**{t.symbol: key for key, t in params.items()}, **{v.expr: f"v:{key}" for key, v in along.items()}}
        loss = [("L", self.lowered.loss.expr, ())]
        products = {"hvp": hessian_vector(graph, self.gradients, params, along),
                    "ggn_vp": gauss_newton_vector(graph, self.lowered, self.model, along)}
        for name, product in products.items():
            if product is not None:
                self.code_programs[name] = schedule(graph, loss + [
                    (key, product[tensor].expr, tensor.shape) for key, tensor in params.items()])
                self.code_names[name] = names
        if products["ggn_vp"] is not None:  # the loss reads no parameter: its Hessian is the output's alone
            self.hessian_form = output_hessian(graph, self.lowered)  # for the document: None but for one layer
        graph.chain, graph.notes = chain, notes

    @property
    def warnings(self) -> list[str]:
        """Known mistakes in the model, one line each (the derivation is still right for what was declared)."""
        return [NOTES[kind].text.format(*names) for kind, *names in self.lowered.graph.notes if NOTES[kind].warning]

    @property
    def notes(self) -> list[str]:
        """The simplifications that were made, one line each."""
        return [NOTES[kind].text.format(*names) for kind, *names in self.lowered.graph.notes]

    def summary(self, network: str = "") -> str:
        """One line: the network (`network`, or its repr), its loss and its inputs."""
        model = self.model
        shapes = model.input_shapes
        if list(shapes) == ["x"] and "x" in model.index_ranges:
            inputs = f"sequences of {shapes['x'][1]} token ids in [0, {model.index_ranges['x']})"
        elif list(shapes) == ["x"] and len(shapes["x"]) == (3 if model.sequence else 2):
            inputs = (f"sequences of length {model.sequence} and width" if model.sequence else "inputs of width") + \
                f" {shapes['x'][-1]}"
        else:
            from .render import input_doc

            inputs = "inputs " + input_doc(model)
        return f"{network or model.net.describe()} with {model.describe_loss()}, on {inputs}."

    def steps(self, program: str = "loss_and_gradients") -> dict[str, sp.Expr]:
        """The named elementwise steps, in order: {"z0": b0 + mm0, ..., "dz1": (p - t)/N}.

        Their free symbols are other steps, parameters, x, t, N, and tensors computed by
        contractions and reductions (mm0, s, m, ...).
        """
        return {s.name: s.expr for s in self.programs[program].statements if s.kind == "expr"}

    def backward_lines(self) -> list[str]:
        """The backward pass in plain text: each cotangent step, then each parameter's gradient."""
        from .printing.text import TextPrinter
        from .render import dtype_carrier, function

        params = {t.symbol: key for key, t in self.lowered.params.items()}
        fn = function(self.programs["loss_and_gradients"], TextPrinter(), params, dtype_carrier(self.model))
        steps = [line for line in fn.lines if line.split(" = ")[0] not in self._forward_names]
        return steps + [f"dL/d[{name}] = {code}" for name, code in fn.results[1:]]

    def render(self, target: str, source: str = "", command: str = "") -> str:
        """The text of the generated file for `target`, a backend's name: numpy or torch (a module), latex
        (a document), html (the derivation beside its code)."""
        if target not in BACKENDS:
            raise ValueError(f"unknown target {target!r}; known: {', '.join(BACKENDS)}")
        backend = BACKENDS[target]
        script = getattr(self.model, "script", "")
        if not (source or self.model.source) and script:  # declared in Python: the script makes it again
            source, command = source or f"a model declared in {script}", command or f"python {script}"
        source = source or self.model.source or "a model declared in Python"
        command = command or f"symprop derive {source}"
        return backend.render(self, backend, source, command)

    def as_book(self) -> Derivation:
        """The same model derived as a book writes it (no log clamp, no max shift), for the document; itself when
        the code has no safeguard to leave out."""
        if self.book or not self.lowered.graph.safeguarded:
            return self
        if self._book is None:
            self._book = Derivation(self.model, book=True, hvp=self.hvp)
        return self._book

    def to_latex(self, standalone: bool = True) -> str:
        """The derivation as a LaTeX document, or as a fragment (one align* environment)."""
        from .render_latex import render_fragment

        return self.render("latex") if standalone else render_fragment(self)

    def _repr_latex_(self) -> str:
        return self.to_latex(standalone=False)

    def _repr_html_(self) -> str:
        """Jupyter shows the derivation beside its code, linked, as `--target html` writes it."""
        return self.render("html")

    def filename(self, target: str) -> str:
        return BACKENDS[target].filename.format(name=self.model.name)

    def write(self, out_dir="generated", targets=None, *, source="", command="",
              force=False) -> list:
        """Write each target's file into `out_dir` (NAME_numpy.py, NAME_torch.py, NAME.tex by default; NAME.html
        too if asked); returns the paths."""
        from pathlib import Path

        from .files import write_all

        out = Path(out_dir)
        return write_all({out / self.filename(target): self.render(target, source, command)
                          for target in targets or default_targets()}, force=force)

