"""Symbolic tensors and parameters: what a forward computes with while symprop traces it.

Every operation adds to the graph of the running trace. Elementwise arithmetic joins SymPy
expressions here (broadcast as torch broadcasts); torch's other functions and Tensor methods
(`@`, `.sum`, `.reshape`, indexing, `torch.cat`, `.exp`) are the ops' own, each found in the
registry under torch's name for it. Anything else (a Python `if` on a value, `float(t)`,
`torch.sort(t)`) is refused with one line that names the line of forward.
"""

from __future__ import annotations

import math
import numbers
import operator

import sympy as sp

from ..errors import SymPropError
from ..graph import Value
from ..ops.registry import CONSTANT_RULES, by_method, by_torch_function, meaning
from ..shapes import N, broadcast
from .trace import GraphTrace, fail, running


def shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def traced_graph():
    trace = running()
    if not isinstance(trace, GraphTrace):
        raise fail("symbolic tensors exist only while symprop traces a model (inside forward or the loss)")
    return trace.graph


def as_value(thing, where: str) -> Value:
    """The graph Value of a symbolic tensor, a Parameter or a Python number."""
    if isinstance(thing, Parameter):
        thing = thing.resolve()
    if isinstance(thing, SymbolicTensor):
        return thing.value
    if isinstance(thing, numbers.Real) and not isinstance(thing, bool):
        if not math.isfinite(thing):
            raise fail(f"{where}: {thing!r} is not a finite number")
        return Value(sp.Integer(thing) if isinstance(thing, numbers.Integral) else sp.Float(float(thing)), ())
    if type(thing).__module__.startswith("torch") and getattr(thing, "is_floating_point", None) is not None:
        return constant(thing, where)
    if isinstance(thing, sp.Expr) and thing.free_symbols == {N}:  # the batch size, read by forward as x.size(0)
        return Value(thing, ())
    raise fail(f"{where} expects a tensor or a number, got {kind_of(thing)}")


def constant(tensor, where: str) -> Value:
    """A torch tensor that the model holds (a buffer) or computes from sizes alone, as a value of the graph: a number,
    or what an op reads it as (a causal mask); any other is refused."""
    if tensor.numel() == 1 and tensor.is_floating_point():
        return as_value(float(tensor.reshape(())), where)
    if isinstance(running(), GraphTrace):
        for rule in CONSTANT_RULES:
            found = rule(traced_graph(), tensor)
            if found is not None:
                return found
    raise fail(f"{where}: a constant tensor of shape {shape_text(tuple(tensor.shape))} (a buffer, or a tensor made in "
               "forward) of a kind symprop does not read")


def kind_of(thing) -> str:
    if callable(thing) and getattr(thing, "__name__", "") == "<lambda>":
        return "a lambda (call it first?)"
    if callable(thing):
        return f"the function {getattr(thing, '__name__', type(thing).__name__)} (call it first?)"
    if thing is None:
        return "None"
    if type(thing).__module__.startswith("torch"):
        return "a torch tensor (symprop traces symbolic tensors; write the model with symprop's vocabulary)"
    return f"a {type(thing).__name__}"


def _broadcast(where: str, *shapes):
    try:
        return broadcast(*shapes)
    except ValueError:
        raise fail(f"{where}: shapes {' and '.join(map(shape_text, shapes))} do not broadcast") from None


def elementwise(fn, operands, where: str) -> SymbolicTensor:
    """fn(*expressions), broadcast as torch broadcasts."""
    values = [as_value(op, where) for op in operands]
    shape = _broadcast(where, *(v.shape for v in values))
    try:
        expr = fn(*(v.expr for v in values))
    except ZeroDivisionError:
        raise fail(f"{where}: division by zero") from None
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise fail(f"{where}: the result is not finite (a division by zero?)")
    return SymbolicTensor(Value(expr, shape))


def axis_of(dim, ndim: int, where: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise fail(f"{where}: dim {dim!r} is out of range for a tensor of {ndim} dimensions")
    return dim % ndim


class SymbolicTensor:
    """A value of the graph being traced, with torch's operators and methods."""

    __array_priority__ = 1000  # numpy scalars on the left defer to our operators
    boolean = False  # torch's value is a tensor of booleans (from_torch knows it from torch.export's graph)

    def __init__(self, value: Value):
        self._value = value

    @property
    def value(self) -> Value:
        """The graph value; reading it marks a named tensor as read (an input that forward never reads is
        an error)."""
        if self._value.expr.is_Symbol:
            trace = running()
            if trace is not None and hasattr(trace, "read"):
                trace.read.add(self._value.expr)
        return self._value

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return len(self._value.shape)

    def dim(self) -> int:
        return self.ndim

    def __repr__(self):
        return f"SymbolicTensor({self._value.expr}, shape={shape_text(self.shape)})"

    # -- arithmetic --------------------------------------------------------------------------
    def __add__(self, other):
        return elementwise(lambda a, b: a + b, (self, other), "+")

    def __radd__(self, other):
        return elementwise(lambda a, b: a + b, (other, self), "+")

    def __sub__(self, other):
        return elementwise(lambda a, b: a - b, (self, other), "-")

    def __rsub__(self, other):
        return elementwise(lambda a, b: a - b, (other, self), "-")

    def __mul__(self, other):
        return elementwise(lambda a, b: a * b, (self, other), "*")

    def __rmul__(self, other):
        return elementwise(lambda a, b: a * b, (other, self), "*")

    def __truediv__(self, other):
        return elementwise(lambda a, b: a / b, (self, other), "/")

    def __rtruediv__(self, other):
        return elementwise(lambda a, b: a / b, (other, self), "/")

    def __pow__(self, other):
        return elementwise(lambda a, b: a ** b, (self, other), "**")

    def __rpow__(self, other):
        return elementwise(lambda a, b: a ** b, (other, self), "**")

    def __neg__(self):
        return elementwise(lambda a: -a, (self,), "-")

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return torch_method("__matmul__")(self, other)

    def __rmatmul__(self, other):
        return torch_method("__rmatmul__")(self, other)

    def __getitem__(self, index):
        return torch_method("__getitem__")(self, index)

    # -- the rest of torch's Tensor methods are the ops' (x.reshape, x.exp: see __getattr__) ------------------------
    @property
    def T(self):
        return torch_method("t")(self)

    @property
    def mT(self):  # noqa: N802 (torch's name): the last two axes swapped
        return torch_method("transpose")(self, -2, -1)

    def size(self, dim=None):
        """The shape, or one dimension of it: the batch axis is the symbol N, the batch size."""
        return self.shape if dim is None else self.shape[axis_of(dim, self.ndim, ".size")]

    def pow(self, exponent):
        return self ** exponent

    # -- what cannot be traced ----------------------------------------------------------------
    def __bool__(self):
        raise fail("a Python if (or and, or, not) on a symbolic value cannot be traced: its value is not known "
                   "while the graph is built; write the choice with symprop.maximum, an activation or arithmetic")

    def __float__(self):
        raise fail("float() of a symbolic tensor: its value is not known while the graph is built")

    __int__ = __index__ = __complex__ = __float__

    def __len__(self):
        raise fail("len() of a symbolic tensor: use .shape")

    def __iter__(self):
        raise fail("iterating over a symbolic tensor is not supported; index it, or use .sum/.reshape")

    def _compare(self, other):
        raise fail("comparisons of symbolic values are not differentiable; use an activation, symprop.maximum or "
                   "symprop.minimum")

    __lt__ = __le__ = __gt__ = __ge__ = _compare
    __hash__ = object.__hash__

    def __getattr__(self, name):
        """torch's Tensor methods that an op has (x.exp(), x.view(), and the others the registry lists)."""
        function = torch_method(name) if not name.startswith("_") else None
        if function is None:
            raise AttributeError(f"'SymbolicTensor' object has no attribute {name!r}")
        return lambda *args, **kwargs: function(self, *args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch's functions that symprop has (each op's, under each of torch's names for it) run as symprop's, as
        from_torch reads them; any other is refused in one line."""
        name = torch_name(func)
        function = torch_callable(name)
        if function is None:
            raise fail(f"{name} is not supported by symprop; write it with symprop's operations "
                       "(symprop.functional, tensor methods, symprop.cat)")
        return function(*args, **accepted(function, kwargs or {}, name))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise fail(f"numpy.{ufunc.__name__} is not supported by symprop; use symprop's functions "
                   "(symprop.exp, symprop.log, ...)")

    def __array_function__(self, func, types, args, kwargs):
        raise fail(f"numpy.{func.__name__} is not supported by symprop; use symprop's operations")


class Parameter:
    """A learned tensor: an attribute of a Module, named by its attribute path (`fc1.weight`).

    `init` is how `init_params` draws it: "normal" (N(0, 1), as torch.randn), ("normal", std),
    ("uniform", bound) for U(−bound, bound), "zeros" or "ones". In forward and in the loss it is
    a tensor like any other; used twice, it is one parameter whose gradient sums both uses."""

    def __init__(self, shape, init="normal"):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise fail(f"Parameter: shape must be positive integers, got {shape!r}")
        self.shape = shape
        self.init = _initialization(init)
        self.frozen = False  # a torch parameter with requires_grad=False: derived, but left by training

    def resolve(self):
        """The tensor this parameter stands for in the interpretation running now."""
        interpretation = running()
        if interpretation is None:
            raise fail("a Parameter is a tensor only inside forward or the loss, while symprop traces the model")
        bound = interpretation.bind(self)  # a graph value while tracing, a torch tensor in a torch run
        return SymbolicTensor(bound) if isinstance(bound, Value) else bound

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"Parameter({shape_text(self.shape)}, init={self.init!r})"

    def _compare(self, other):
        raise fail("comparisons of symbolic values are not differentiable")

    __lt__ = __le__ = __gt__ = __ge__ = _compare
    __hash__ = object.__hash__


def _delegate(name):
    def method(self, *args, **kwargs):
        return getattr(self.resolve(), name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__pow__", "__rpow__", "__neg__", "__pos__", "__matmul__", "__rmatmul__", "sum", "mean", "transpose",
              "permute", "reshape", "view", "__getitem__"):
    setattr(Parameter, _name, _delegate(_name))
Parameter.T = property(lambda self: self.resolve().T)


def _initialization(init) -> tuple:
    if init in (("zeros",), ("ones",)):  # as a Parameter holds it
        return init
    if init in ("normal", "zeros", "ones"):
        return ("normal", 1.0) if init == "normal" else (init,)
    if isinstance(init, tuple) and len(init) == 2 and init[0] in ("normal", "uniform") \
            and isinstance(init[1], numbers.Real) and not isinstance(init[1], bool) and init[1] > 0:
        return (init[0], float(init[1]))
    raise fail(f"Parameter: init must be 'normal', 'zeros', 'ones', ('normal', std) or ('uniform', bound), "
               f"got {init!r}")


# -- torch's names for what symbolic tensors compute ------------------------------------------------------------
def torch_name(target) -> str:
    """torch.exp, torch.nn.functional.<name>, operator.add: a torch function's qualified name, as the registry has
    it (torch's C functions are named by the Python module that exports them)."""
    module = getattr(target, "__module__", None) or "torch"
    if module == "torch._C._nn":  # some of torch.nn.functional's functions are torch's C functions
        module = "torch.nn.functional"
    if module.startswith("torch._") or module == "torch.functional":  # some are torch.functional's Python functions
        module = "torch"
    if module == "_operator":
        module = "operator"
    return f"{module}.{getattr(target, '__name__', target)}"


def accepted(function, kwargs: dict, name: str) -> dict:
    """The keyword arguments `function` takes. torch passes its deprecated ones (size_average, reduce) as None;
    any other that symprop has no use for is refused."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin: operator.add
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    for key, value in kwargs.items():
        if key not in parameters and value is not None:
            raise SymPropError(f"{name}: {key}={value!r} is not supported by symprop")
    return {key: value for key, value in kwargs.items() if key in parameters}


def torch_callable(name: str):
    """What a torch function, by its qualified name, is on symbolic tensors: its op's functional (or public
    function), or the tensor operation; None if symprop has none."""
    op = by_torch_function(name)
    return meaning(op, name) if op is not None else TORCH_FUNCTIONS.get(name)


def torch_method(name: str):
    """What a torch Tensor method is on symbolic tensors (x.view(...), x.exp()); None if symprop has none."""
    op = by_method(name)
    return meaning(op, name) if op is not None else TORCH_METHODS.get(name)


def _binary(name: str):
    """Python's operator `name`, but a torch tensor (a buffer) on the left of a symbolic one calls the symbolic one's
    reflected method: torch's own would hand the call back to __torch_function__, and that to it, without end."""
    forward, reflected = getattr(operator, name), f"__r{name}__"

    def apply(x, other):
        if isinstance(other, SymbolicTensor) and not isinstance(x, SymbolicTensor):
            return getattr(other, reflected)(x)
        return forward(x, other)

    return apply


_plus, _minus, _times, _over, _pow = (_binary(name) for name in ("add", "sub", "mul", "truediv", "pow"))


def _add(x, other, alpha=1):
    return _plus(x, other if alpha == 1 else alpha * other)


def _sub(x, other, alpha=1):
    return _minus(x, other if alpha == 1 else alpha * other)


def _expand(x, *size) -> SymbolicTensor:
    """x.expand(size): x broadcast to `size` (-1 keeps a dimension), as its elementwise value is."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    value = as_value(x, ".expand")
    lead = len(size) - len(value.shape)
    if lead < 0:
        raise fail(f".expand{shape_text(size)}: fewer dimensions than the tensor's {shape_text(value.shape)}")
    shape = tuple(value.shape[a - lead] if d == -1 else d for a, d in enumerate(size))
    return SymbolicTensor(Value(value.expr, _broadcast(".expand", value.shape, shape)))


def _filled(shape, value) -> SymbolicTensor:
    """A tensor of one number, of a shape with the batch size in it (torch.zeros(B, H): a recurrence's first state)."""
    return SymbolicTensor(Value(as_value(value, "torch.full").expr, tuple(shape)))


def _same(x, memory_format=None):
    return x


def _cast(x, dtype=None, *args, **options):
    """x.float(), x.to(torch.float64), .double(): a value keeps the generated code's dtype. Integer ids stay ids; a
    value cast to integers is refused (it would have no derivative)."""
    dtype = options.get("dtype", dtype)
    if dtype is None or getattr(dtype, "is_floating_point", True):
        return x
    graph = traced_graph()
    tensor = graph.tensors.get(x.value.expr) if isinstance(x, SymbolicTensor) else None
    if tensor is None or tensor.op not in ("input", "target") or not (tensor.index_range or tensor.op == "target"):
        raise fail(f"a cast to {dtype} of a value that symprop differentiates is not supported")
    return x


def _getattr(x, name):
    if name == "T":
        return x.T
    if name == "mT":
        return x.transpose(-2, -1)
    if name == "shape":
        return tuple(x.shape)
    raise fail(f"Tensor.{name} is not supported by symprop")


TORCH_FUNCTIONS = {  # arithmetic, by torch's names and Python's operators (the ops have the rest)
    "operator.add": _plus, "operator.sub": _minus, "operator.mul": _times,
    "operator.truediv": _over, "operator.pow": _pow, "operator.neg": operator.neg,
    "operator.pos": operator.pos, "operator.matmul": operator.matmul, "operator.getitem": operator.getitem,
    "builtins.getattr": _getattr,
    "torch.add": _add, "torch.sub": _sub, "torch.mul": _times, "torch.div": _over,
    "torch.pow": _pow, "torch.neg": operator.neg, "torch.square": lambda x: x ** 2,
    # ATen's, as torch.export writes them
    "aten.add.Tensor": _add, "aten.add.Scalar": _add, "aten.sub.Tensor": _sub, "aten.sub.Scalar": _sub,
    "aten.rsub.Scalar": lambda x, other, alpha=1: _sub(other, x, alpha), "aten.rsub.Tensor":
    lambda x, other, alpha=1: _sub(other, x, alpha), "aten.mul.Tensor": _times, "aten.mul.Scalar": _times,
    "aten.div.Tensor": _over, "aten.div.Scalar": _over, "aten.neg.default": operator.neg,
    "aten.pow.Tensor_Scalar": _pow, "aten.pow.Tensor_Tensor": _pow, "aten.pow.Scalar": _pow,
    "aten.square.default": lambda x: x ** 2, "aten.reciprocal.default": lambda x: 1 / x,
    "aten.rsqrt.default": lambda x: x ** -0.5,
    "aten.contiguous.default": _same, "aten.alias.default": _same, "aten.clone.default": _same,
    "aten.to.dtype": _cast, "aten._to_copy.default": _cast,
    "aten.expand.default": lambda x, size, implicit=False: _expand(x, *size),
    "aten.expand_as.default": lambda x, other: _expand(x, *other.shape),
    "aten.zeros.default": lambda size, **_: _filled(size, 0), "aten.ones.default": lambda size, **_: _filled(size, 1),
    "aten.full.default": lambda size, value, **_: _filled(size, value),
    "aten.zeros_like.default": lambda x, **_: _filled(x.shape, 0),
    "aten.ones_like.default": lambda x, **_: _filled(x.shape, 1),
    "aten.full_like.default": lambda x, value, **_: _filled(x.shape, value),
    # torch.empty(B, 1).fill_(SOS): what empty holds is read only once filled (fill's value)
    "aten.empty.memory_format": lambda size, **_: _filled(size, 0),
    "aten.fill.Scalar": lambda x, value: _filled(x.shape, value),
}
TORCH_METHODS = {
    "expand": lambda x, *size: _expand(x, *size),
    "pow": _pow, "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "neg": operator.neg, "contiguous": lambda x: x, "size": lambda x, *args, **kwargs: x.size(*args, **kwargs),
    "square": lambda x: x ** 2,
}
