"""Symbolic tensors and parameters: what a forward computes with while symprop traces it.

Every operation adds to the graph of the running trace: elementwise arithmetic joins SymPy
expressions (broadcast as torch broadcasts), `@` is a contraction, `.sum`/`.mean` are reductions,
`.reshape`/`.transpose`/`.T`/indexing/`cat` move entries. Anything else (a Python `if` on a
value, `float(t)`, `torch.sort(t)`) is refused with one line that names the line of forward.
"""

from __future__ import annotations

import math
import numbers
import operator

import sympy as sp

from ..errors import SymPropError
from ..graph import Value
from ..graph.reduce import reduce_sum
from ..ops.registry import by_method, by_torch_function
from ..shapes import N, broadcast, size
from .trace import GraphTrace, fail, running

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _graph():
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
    raise fail(f"{where} expects a tensor or a number, got {_kind(thing)}")


def _kind(thing) -> str:
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


def _axis(dim, ndim: int, where: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise fail(f"{where}: dim {dim!r} is out of range for a tensor of {ndim} dimensions")
    return dim % ndim


class SymbolicTensor:
    """A value of the graph being traced, with torch's operators and methods."""

    __array_priority__ = 1000  # numpy scalars on the left defer to our operators

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
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # -- reductions and rearrangements ------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        return reduce(self, dim, keepdim, mean=False)

    def mean(self, dim=None, keepdim=False):
        return reduce(self, dim, keepdim, mean=True)

    @property
    def T(self):
        if self.ndim > 2:
            raise fail(".T reverses the axes of a matrix; use .transpose(dim0, dim1) for more dimensions")
        return self.transpose(0, -1) if self.ndim == 2 else self

    def transpose(self, dim0, dim1):
        a, b = _axis(dim0, self.ndim, ".transpose"), _axis(dim1, self.ndim, ".transpose")
        perm = list(range(self.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return permute(self, tuple(perm))

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        axes = tuple(_axis(d, self.ndim, ".permute") for d in dims)
        if sorted(axes) != list(range(self.ndim)):
            raise fail(f".permute{dims}: not a permutation of the {self.ndim} dimensions")
        return permute(self, axes)

    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return reshape(self, shape)

    view = reshape

    def size(self, dim=None):
        """The shape, or one dimension of it: the batch axis is the symbol N, the batch size."""
        return self.shape if dim is None else self.shape[_axis(dim, self.ndim, ".size")]

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = _axis(start_dim, self.ndim, ".flatten"), _axis(end_dim, self.ndim, ".flatten")
        return reshape(self, (*self.shape[:start], size(self.shape[start:end + 1]), *self.shape[end + 1:]))

    def squeeze(self, dim=None):
        axes = range(self.ndim) if dim is None else (_axis(dim, self.ndim, ".squeeze"),)
        return reshape(self, tuple(d for a, d in enumerate(self.shape) if not (a in axes and d == 1)))

    def unsqueeze(self, dim):
        axis = _axis(dim, self.ndim + 1, ".unsqueeze")
        return reshape(self, (*self.shape[:axis], 1, *self.shape[axis:]))

    def t(self):
        return self.T

    def pow(self, exponent):
        return self ** exponent

    def __getitem__(self, index):
        return getitem(self, index)

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
        """torch's Tensor methods that an op has (x.exp(), and the others the registry lists)."""
        function = torch_method(name) if not name.startswith("_") else None
        if function is None:
            raise AttributeError(f"'SymbolicTensor' object has no attribute {name!r}")
        return lambda *args, **kwargs: function(self, *args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch's functions that symprop has (each op's, and torch.cat, torch.reshape, ...) run as symprop's, as
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


# -- operations ------------------------------------------------------------------------------------
def matmul(a, b) -> SymbolicTensor:
    """torch.matmul as one contraction: a matrix product, batched over leading axes of equal size."""
    a, b = as_value(a, "@"), as_value(b, "@")
    if not a.shape or not b.shape:
        raise fail("@ needs tensors of at least one dimension; use * for a number")
    if a.shape[-1] != (b.shape[0] if len(b.shape) == 1 else b.shape[-2]):
        raise fail(f"@: shapes {shape_text(a.shape)} and {shape_text(b.shape)} do not multiply "
                   f"({a.shape[-1]} columns against {b.shape[0] if len(b.shape) == 1 else b.shape[-2]} rows)")
    a_spec = LETTERS[:len(a.shape)]
    k = a_spec[-1]
    if len(b.shape) == 1:
        b_spec, out = k, a_spec[:-1]
    else:
        batch = b.shape[:-2]
        if batch and (len(a.shape) != len(b.shape) or a.shape[:-2] != batch):
            raise fail(f"@: the batch axes of {shape_text(a.shape)} and {shape_text(b.shape)} differ; symprop "
                       "multiplies batches of equal size only")
        b_spec, out = a_spec[:len(batch)] + k + "z", a_spec[:-1] + "z"
    a_spec, a_value = _letters(a, a_spec)
    b_spec, b_value = _letters(b, b_spec)
    g = _graph()
    return SymbolicTensor(g.einsum(f"{a_spec},{b_spec}->{out}", a_value, b_value, stem=running().stem("mm")))


def _letters(value: Value, letters: str):
    """(letters, value) for an einsum operand; a transposed tensor is read as itself with its letters moved
    (x @ w.T is one product with w, as torch's linear computes it)."""
    g = _graph()
    tensor = g.tensors.get(value.expr)
    if tensor is not None and tensor.op == "rearrange" and tuple(tensor.split) == tuple(tensor.operands[0].shape) \
            and tuple(tensor.split[a] for a in tensor.perm) == tuple(tensor.shape):
        moved = [""] * len(letters)
        for position, axis in enumerate(tensor.perm):
            moved[axis] = letters[position]
        return "".join(moved), tensor.operands[0]
    return letters, value


def reduce(x, dim, keepdim: bool, mean: bool) -> SymbolicTensor:
    value = as_value(x, ".mean" if mean else ".sum")
    ndim = len(value.shape)
    dims = range(ndim) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    axes = sorted({_axis(d, ndim, ".mean" if mean else ".sum") for d in dims})
    g = _graph()
    names = [symbol.name for symbol in g.tensor_symbols(value.expr)]
    stem = running().stem("sum_" + "_".join(names) if 0 < len(names) <= 2 else "sums")
    kept = tuple(1 if a in axes else d for a, d in enumerate(value.shape))
    dropped = tuple(d for a, d in enumerate(value.shape) if a not in axes)
    if not keepdim and axes == list(range(len(axes))):  # leading axes: reduce_sum drops them itself
        total = reduce_sum(g, value, dropped, stem=stem)
    else:
        total = reduce_sum(g, value, kept, stem=stem)
        if not keepdim and kept != dropped:
            total = g.rearrange(total, kept, tuple(range(ndim)), dropped, stem=stem)
    shape = kept if keepdim else dropped
    computed = g.shape_of(total.expr)
    if len(computed) > len(shape):  # axes of size 1 summed: nothing was added, but they must go
        total = g.rearrange(Value(total.expr, computed), computed, tuple(range(len(computed))), shape, stem=stem)
    count = size([value.shape[a] for a in axes])
    return SymbolicTensor(Value(total.expr / count if mean else total.expr, shape))


def permute(x, perm: tuple) -> SymbolicTensor:
    value = as_value(x, ".permute")
    if perm == tuple(range(len(perm))):
        return SymbolicTensor(value)
    shape = tuple(value.shape[a] for a in perm)
    return SymbolicTensor(_graph().rearrange(value, value.shape, perm, shape, stem=running().stem("tr")))


def reshape(x, shape: tuple) -> SymbolicTensor:
    value = as_value(x, ".reshape")
    shape = tuple(int(d) if isinstance(d, sp.Integer) else d for d in shape)  # x.size(0) is the batch size, N

    def valid(d) -> bool:
        return (isinstance(d, sp.Expr) and d.has(N)) or (isinstance(d, int) and not isinstance(d, bool) and
                                                          (d >= 1 or d == -1))

    if not all(valid(d) for d in shape) or list(shape).count(-1) > 1:
        raise fail(f".reshape{shape_text(shape)}: give positive sizes, and at most one -1")
    known = size([d for d in shape if d != -1])
    total = size(value.shape)
    if -1 in shape:
        rest = sp.simplify(total / known)
        if not (rest.is_Integer or rest == N or (rest / N).is_Integer):
            raise fail(f".reshape{shape_text(shape)}: {shape_text(value.shape)} does not split that way")
        shape = tuple((int(rest) if rest.is_Integer else rest) if d == -1 else d for d in shape)
    elif sp.simplify(size(shape) - total) != 0:
        raise fail(f".reshape{shape_text(shape)}: {shape_text(value.shape)} has a different number of entries "
                   "(keep the batch axis with -1)")
    if tuple(shape) == tuple(value.shape):
        return SymbolicTensor(value)
    return SymbolicTensor(_graph().rearrange(value, value.shape, tuple(range(len(value.shape))), tuple(shape),
                                             stem=running().stem("rs")))


def getitem(x, index) -> SymbolicTensor:
    """Basic indexing: slices of step 1 and integers, one per leading axis (and ... for the rest)."""
    value = as_value(x, "indexing")
    index = index if isinstance(index, tuple) else (index,)
    if index.count(Ellipsis) > 1:
        raise fail("indexing: at most one ...")
    if Ellipsis in index:
        i = index.index(Ellipsis)
        index = index[:i] + (slice(None),) * (len(value.shape) - len(index) + 1) + index[i + 1:]
    if len(index) > len(value.shape):
        raise fail(f"indexing: {len(index)} indices for a tensor of {len(value.shape)} dimensions")
    g, stem, dropped = _graph(), running().stem("sl"), []
    for axis, item in enumerate(index):
        dim = value.shape[axis]
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise fail("indexing: only slices of step 1 are supported")
            if item == slice(None):
                continue
            if dim == N:
                raise fail("indexing: the batch axis is taken whole (:)")
            start, stop, _ = item.indices(dim)
        elif isinstance(item, int) and not isinstance(item, bool):
            if dim == N:
                raise fail("indexing: the batch axis is taken whole (:)")
            if not -dim <= item < dim:
                raise fail(f"indexing: index {item} is out of range for a dimension of size {dim}")
            start, stop = item % dim, item % dim + 1
            dropped.append(axis)
        else:
            raise fail(f"indexing with {_kind(item)} is not supported; use slices and integers")
        if stop <= start:
            raise fail(f"indexing: the slice {item} of a dimension of size {dim} is empty")
        if (start, stop) != (0, dim):
            value = g.slice(value, axis, start, stop, stem=stem)
    if dropped:
        shape = tuple(d for a, d in enumerate(value.shape) if a not in dropped)
        value = g.rearrange(value, value.shape, tuple(range(len(value.shape))), shape, stem=stem)
    return SymbolicTensor(value)


def cat(tensors, dim: int = 0) -> SymbolicTensor:
    """torch.cat: tensors of equal shape but along `dim`, joined along it."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise fail(f"cat expects a list of tensors, got {_kind(tensors)}")
    tensors = [t.resolve() if isinstance(t, Parameter) else t for t in tensors]
    if not any(isinstance(t, SymbolicTensor) for t in tensors):
        import torch  # torch tensors, in a torch run of the model

        return torch.cat(tensors, dim=dim)
    values = [as_value(t, "cat") for t in tensors]
    ndim = len(values[0].shape)
    axis = _axis(dim, max(ndim, 1), "cat")
    for v in values:
        if len(v.shape) != ndim or any(a != axis and d != values[0].shape[a] for a, d in enumerate(v.shape)):
            raise fail(f"cat along dim {dim}: shapes {', '.join(shape_text(v.shape) for v in values)} differ "
                       "elsewhere")
    if values[0].shape[axis] == N:
        raise fail("cat along the batch axis is not supported")
    if len(values) == 1:
        return SymbolicTensor(values[0])
    return SymbolicTensor(_graph().concat(tuple(values), axis, stem=running().stem("cat")))


class Parameter:
    """A learned tensor: an attribute of a Module, named by its attribute path (`fc1.weight`).

    `init` is how `init_params` draws it: "normal" (N(0, 1), as torch.randn), ("normal", std),
    ("uniform", bound) for U(−bound, bound), "zeros" or "ones". In forward and in the loss it is
    a tensor like any other; used twice, it is one parameter whose gradient sums both uses."""

    def __init__(self, shape, init="normal"):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise fail(f"Parameter: shape must be positive integers, got {shape!r}")
        self.shape = shape
        self.init = _initialization(init)

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
    if module.startswith("torch._") or module == "torch._C._VariableFunctions":
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
    if op is not None:
        return op.functional or op.public
    return TORCH_FUNCTIONS.get(name)


def torch_method(name: str):
    """What a torch Tensor method is on symbolic tensors (x.view(...), x.exp()); None if symprop has none."""
    op = by_method(name)
    if op is not None:
        return op.functional or op.public
    return TORCH_METHODS.get(name)


def _method(name):
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


def _sum(x, dim=None, keepdim=False, **_):
    return x.sum(dim, keepdim)


def _mean(x, dim=None, keepdim=False, **_):
    return x.mean(dim, keepdim)


def _reshape(x, *shape):
    return x.reshape(*shape)


def _transpose(x, dim0, dim1):
    return x.transpose(dim0, dim1)


def _pow(x, exponent):
    return x ** exponent


def _getattr(x, name):
    if name == "T":
        return x.T
    if name == "mT":
        return x.transpose(-2, -1)
    if name == "shape":
        return tuple(x.shape)
    raise fail(f"Tensor.{name} is not supported by symprop")


TORCH_FUNCTIONS = {  # arithmetic and the moving of entries, by torch's names
    "operator.add": operator.add, "operator.sub": operator.sub, "operator.mul": operator.mul,
    "operator.truediv": operator.truediv, "operator.pow": operator.pow, "operator.neg": operator.neg,
    "operator.pos": operator.pos, "operator.matmul": operator.matmul, "operator.getitem": operator.getitem,
    "builtins.getattr": _getattr,
    "torch.add": operator.add, "torch.sub": operator.sub, "torch.mul": operator.mul, "torch.div": operator.truediv,
    "torch.pow": _pow, "torch.neg": operator.neg, "torch.matmul": operator.matmul, "torch.mm": operator.matmul,
    "torch.bmm": operator.matmul, "torch.cat": cat, "torch.concat": cat, "torch.sum": _sum, "torch.mean": _mean,
    "torch.reshape": _reshape, "torch.transpose": _transpose, "torch.flatten": _method("flatten"),
    "torch.squeeze": _method("squeeze"), "torch.unsqueeze": _method("unsqueeze"), "torch.square": lambda x: x ** 2,
}
TORCH_METHODS = {
    "sum": _sum, "mean": _mean, "reshape": _reshape, "view": _reshape, "transpose": _transpose,
    "permute": _method("permute"), "t": lambda x: x.T, "pow": _pow, "matmul": operator.matmul, "add": operator.add,
    "sub": operator.sub, "mul": operator.mul, "div": operator.truediv, "neg": operator.neg,
    "contiguous": lambda x: x, "size": _method("size"), "flatten": _method("flatten"), "squeeze": _method("squeeze"),
    "unsqueeze": _method("unsqueeze"), "square": lambda x: x ** 2,
}
