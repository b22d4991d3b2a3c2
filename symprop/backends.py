"""The backends, each one registered object (after SymForce's CodegenConfig): its printer, template,
file name and flags. `symprop derive --target NAME`, `check` and the golden record read this table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .plan import Options


@dataclass(frozen=True)
class Backend:
    name: str
    filename: str  # "{name}_numpy.py": {name} is the model's
    template: str
    render: Callable  # (derivation, backend, source, command) -> the file's text
    printer: Callable = None  # () -> a StatementPrinter, for code backends
    plan: Callable = None  # the name of a generated function -> the memory plan's Options for it (code backends)
    runs: bool = False  # a module that `check` imports and runs against torch.autograd
    loss_as_float: bool = False  # loss() returns a Python float, not an array of the backend
    loss_doc: str = ""
    maximum: str = ""  # the elementwise maximum of two arrays, for AMSGrad
    not_integers: str = ""  # whether {} holds numbers other than integers
    epsilon: str = ""  # the machine epsilon of {}'s dtype
    array_type: str = ""  # what the generated module takes as an array
    array_hint: str = ""  # ... in the words of its refusal of anything else
    array_of: str = ""  # an array of a list of numbers
    as_numbers: str = ""  # an input of integers (a 0/1 mask) in the arrays' dtype, {0} from {1}'s; "": promoted anyway
    # train()'s fresh draws of a model's random inputs, each step: {kind: code}, with {shape} (batch first) and {dtype}
    draws: tuple = ()
    default: bool = True  # written by symprop derive unless --target says otherwise


def _render_module(derivation, backend, source, command):
    from .render import render_module

    return render_module(derivation, backend, source, command)


def _render_latex(derivation, backend, source, command):
    from .render_latex import render_document

    return render_document(derivation, backend, source, command)


def _render_html(derivation, backend, source, command):
    from .render_html import render_html

    return render_html(derivation, backend, source, command)


def _numpy_printer():
    from .printing.numpy import NumPyBackendPrinter

    return NumPyBackendPrinter()


def _torch_printer():
    from .printing.torch import TorchBackendPrinter

    return TorchBackendPrinter()


BACKENDS: dict[str, Backend] = {}


def default_targets() -> tuple[str, ...]:
    return tuple(name for name, backend in BACKENDS.items() if backend.default)


def register(backend: Backend) -> Backend:
    BACKENDS[backend.name] = backend
    return backend


def _numpy_plan(function: str) -> Options:
    return Options("numpy", chunk=True)


register(Backend("numpy", "{name}_numpy.py", "numpy_module.py.j2", _render_module, _numpy_printer,
                 plan=_numpy_plan, runs=True, loss_as_float=True, loss_doc="a Python float",
                 maximum="np.maximum", not_integers="not np.issubdtype({}.dtype, np.integer)",
                 epsilon="np.finfo({}.dtype).eps", array_type="np.ndarray", array_hint="NumPy arrays (np.asarray(x))",
                 array_of="np.asarray",
                 draws=(("keep", "(rng.random({shape}) < {p}).astype({dtype})"),
                        ("normal", "rng.standard_normal({shape}).astype({dtype})"),
                        ("uniform", "rng.random({shape}).astype({dtype})"))))
# torch: forward and loss keep no array of a value read for the last time, so that autograd can run through them;
# the functions that return derivatives do (loss_and_gradients, hvp, ggn_vp)
register(Backend("torch", "{name}_torch.py", "torch_module.py.j2", _render_module, _torch_printer,
                 plan=lambda function: Options("torch", reuse=function not in ("forward", "loss"),
                                               fused_multiply_add=True),
                 runs=True, loss_doc="a 0-d tensor", maximum="torch.maximum",
                 not_integers="{0}.is_floating_point() or {0}.is_complex()", as_numbers="{0}.to({1}.dtype)",
                 epsilon="torch.finfo({}.dtype).eps", array_type="torch.Tensor", array_of="torch.as_tensor",
                 array_hint="torch tensors (torch.as_tensor(x))",
                 draws=(("keep", "torch.bernoulli(torch.full({shape}, {p}, dtype={dtype}), generator=generator)"
                                 ".to(t.device)"),  # the generator is the CPU's, as train()'s shuffling
                        ("normal", "torch.randn({shape}, generator=generator, dtype={dtype}).to(t.device)"),
                        ("uniform", "torch.rand({shape}, generator=generator, dtype={dtype}).to(t.device)"))))
register(Backend("latex", "{name}.tex", "derivation.tex.j2", _render_latex))
# the derivation beside the code of the NumPy module's loss_and_gradients: its printer and its plan
register(Backend("html", "{name}.html", "derivation.html.j2", _render_html, _numpy_printer, _numpy_plan,
                 default=False))
