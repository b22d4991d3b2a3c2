"""The registry of operations: every op symprop knows, under each of its names.

An op is one object, made in the module of its own name under `symprop/ops/` (`silu.py`, `layer_norm.py`,
`einsum.py`), which holds everything about it: what it computes, its derivative rules, its shape, its cost, how each
backend prints it and the names torch gives it (the function, the Tensor method, the nn class, the ATen overloads).
The front ends (symprop.functional, the layers, TOML specs, from_torch), the derivation and the printers find ops
here, and none of them names a particular op. Importing the package `symprop.ops` registers every op module in it.

This module holds the tables and what every op shares; it imports nothing of symprop's but its errors, so that any
stage may read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SymPropError

OPS: dict[str, Op] = {}  # name -> op, in registration order
BACKENDS = ("numpy", "torch", "text", "latex", "mathml")  # the printers an op may give a spelling for


@dataclass(frozen=True)
class TorchNames:
    """What torch calls an op: its functions ("torch.nn.functional.silu", "torch.sigmoid"), its Tensor methods
    ("sigmoid"), its torch.nn class ("SiLU") and the ATen overloads torch.export shows ("aten.silu.default")."""

    functions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    module: str = ""
    aten: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    """An option of an op, as torch names it (F.elu(x, alpha=1.0), nn.ELU(alpha=1.0)). `check(value, name)` returns
    the value or raises SymPropError; `meaning` False: accepted for torch's signature, with no effect (inplace)."""

    name: str
    default: object
    check: Callable | None = None
    meaning: bool = True


@dataclass(frozen=True)
class Call:
    """A backend's one call for an op's whole computation (torch.softmax, torch's F.linear), which the op's plan rule
    makes a statement of kind "call": spell(printer, statement, operand texts, into) -> the call's text, `into` the
    name of an array to write the result into ("" for a new one); `into_input`: it may write into its first
    operand's array."""

    spell: Callable
    into_input: bool = False


COTANGENT_RULES: list[Callable] = []  # (graph, terms, shape, stem) -> a Value or None: an op's form of a sum


def cotangent_rule(rule: Callable) -> Callable:
    """Register an op's form of the sum of a tensor's cotangent terms, where they are of its making (pads that tile a
    tensor are one concatenation); the derivation tries each before it adds the terms up."""
    COTANGENT_RULES.append(rule)
    return rule


STATE_RULES: list[Callable] = []  # graph -> [(name, Value)]: what the code updates besides the gradients


def state_rule(rule: Callable) -> Callable:
    """Register what an op's layers update in training mode besides the parameters (a batch norm's batch statistics,
    which its running statistics move toward): results of loss_and_gradients after the gradients."""
    STATE_RULES.append(rule)
    return rule


CONSTANT_RULES: list[Callable] = []  # (graph, torch tensor) -> a Value or None: an op's reading of a constant


def constant_rule(rule: Callable | None = None, *, last: bool = False):
    """Register an op's reading of a constant tensor that the model computes from sizes alone or holds as a buffer
    (a causal mask is the causal_mask op): the tensor as a value of the graph, or None where it is not the op's.
    `last`: tried after every other (a table of numbers, which takes any tensor)."""
    if rule is None:
        return lambda r: constant_rule(r, last=last)
    CONSTANT_RULES.insert(len(CONSTANT_RULES) if last else 0, rule)
    return rule


PLAN_RULES: list[Callable] = []  # (uses, shapes, backend) -> uses: the ops' own rewrites of the program as code runs it


def plan_rule(rule: Callable) -> Callable:
    """Register an op's rewrite of the program as code runs it (a decorator): it makes the op one call where the
    backend has one."""
    PLAN_RULES.append(rule)
    return rule


LAYOUT_RULES: list[Callable] = []  # (uses, shapes, backend) -> uses: an op's choice of its operands' memory layout


def layout_rule(rule: Callable) -> Callable:
    """Register an op's rewrite of how its operands lie in memory (a decorator), made once the plan has chosen what
    it keeps and what it computes again: a copy into the order of axes the backend's call reads."""
    LAYOUT_RULES.append(rule)
    return rule


SPELLING_RULES: list[Callable] = []  # (uses, shapes, backend) -> uses: how the backend computes a function


def spelling_rule(rule: Callable) -> Callable:
    """Register a rewrite of how the backend computes a function (a decorator), made last, once every other rule has
    read the program as derived: e^u as 2^(u·log₂e)."""
    SPELLING_RULES.append(rule)
    return rule


def call(name: str, backend: str) -> Call | None:
    """`backend`'s one call for the op `name`, if it has one."""
    return OPS[name].calls.get(backend) if name in OPS else None


@dataclass(frozen=True)
class Helper:
    """A function that generated code defines once, at the top of its module, and calls by `name` (NumPy's erf)."""

    name: str
    source: str


class Op:
    """What every op has: a name (its functional name, F.<name>, and its TOML type) and torch's names for it."""

    name: str = ""
    torch: TorchNames = TorchNames()
    params: tuple[Param, ...] = ()
    layer_class: type | None = None  # the symprop layer (a Module): S.<torch.nn class name>
    functional: Callable | None = None  # F.<name>, on symbolic tensors and torch tensors alike
    public: Callable | None = None  # symprop.<name> (symprop.exp)
    calls: dict = {}  # backend -> Call: its one call for the whole op, where it has one
    front: dict = {}  # torch's name (qualified function, or method) -> its meaning on symbolic tensors, where it is not
    #                   the functional's (x.view and x.permute are both a rearrangement)
    # an op that drops entries of its own at random (attention's dropout_p): (args, kwargs) as torch.export traced
    # them -> (the probability of a drop, the shape of its mask); its meaning then takes dropout_mask=
    dropout_of: Callable | None = None

    def bind(self, args: tuple, kwargs: dict, where: str) -> dict:
        """The op's options from a call as torch takes them (positionally or by name), checked; defaults filled."""
        names = [p.name for p in self.params]
        if len(args) > len(names):
            raise SymPropError(f"{where} takes {len(names)} option{'s' * (len(names) != 1)}, got {len(args)}")
        given = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                known = f"; it takes {', '.join(names)}" if names else "; it takes none"
                raise SymPropError(f"{where}: unknown option {key}{known}")
            if key in given:
                raise SymPropError(f"{where}: {key} given twice")
            given[key] = value
        options = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            options[p.name] = p.check(value, p.name) if p.check and p.name in given else value
        return options

    def meaningful(self, options: dict) -> dict:
        """The options that change the value (not inplace)."""
        return {p.name: options[p.name] for p in self.params if p.meaning}

    def __repr__(self):
        return f"<op {self.name}>"


_INDEXES: dict[str, dict] = {}  # the lookups below, built once per registration state


def register(op: Op) -> Op:
    if op.name in OPS:
        raise ValueError(f"two ops are named {op.name!r}")
    OPS[op.name] = op
    _INDEXES.clear()
    return op


def defop(name: str, *, torch: TorchNames | None = None, layer: type | None = None, functional: Callable | None = None,
          **facts) -> Op:
    """Make and register an op that is not elementwise: a layer kind (Linear), a loss, a composite (softmax)."""
    op = Op()
    op.name, op.torch, op.layer_class, op.functional = name, torch or TorchNames(), layer, functional
    for key, value in facts.items():
        setattr(op, key, value)
    return register(op)


def lookup(name: str) -> Op:
    return OPS[name]


def fact(kind: str, name: str):
    """A fact of the op that computes a statement of `kind` (a primitive's, for the memory plan: owns_array, view,
    product, ...); False where no op is of that kind (an expression, a call)."""
    return getattr(OPS.get(kind), name, False)


def with_fact(name: str) -> Op:
    """The op that has fact `name`: the derivation's way to an op it builds with (stops_gradient: a value read as a
    constant)."""
    return next(op for op in OPS.values() if getattr(op, name, False))


def meaning(op: Op, name: str):
    """What torch's name `name` for `op` (a function's qualified name, or a method's) is on symbolic tensors."""
    return op.front.get(name) or op.functional or op.public


def _index(kind: str, names_of) -> dict:
    if kind not in _INDEXES:
        _INDEXES[kind] = {name: op for op in OPS.values() for name in names_of(op)}
    return _INDEXES[kind]


def by_torch_function(qualified: str) -> Op | None:
    """The op of a torch function, by its qualified name: torch.tanh, torch.nn.functional.silu."""
    return _index("functions", lambda op: op.torch.functions).get(qualified)


def by_method(name: str) -> Op | None:
    """The op of a Tensor method: x.sigmoid()."""
    return _index("methods", lambda op: op.torch.methods).get(name)


def by_module(name: str) -> Op | None:
    """The op of a torch.nn class, by its name: SiLU."""
    return _index("modules", lambda op: (op.torch.module,) if op.torch.module else ()).get(name)


def by_aten(name: str) -> Op | None:
    """The op of an ATen overload: aten.silu.default."""
    return _index("aten", lambda op: op.torch.aten).get(name)


def by_function(function: type) -> Op | None:
    """The op whose SymPy function this is (sp.exp, sigmoid, sp.Max): for the printers and the torch reference."""
    return _index("sympy", lambda op: (op.sympy,) if getattr(op, "sympy", None) is not None else ()).get(function)


def layers() -> dict[str, type]:
    """symprop's layers by class name (Linear, SiLU, LayerNorm): S.<name>."""
    return dict(sorted((op.layer_class.__name__, op.layer_class) for op in OPS.values() if op.layer_class is not None))


def toml_layers() -> dict[str, type]:
    """The layers a spec may use, by type: type = "silu"."""
    return dict(sorted((cls.kind, cls) for cls in layers().values() if hasattr(cls, "from_toml") and not is_loss(cls)))


def activations() -> dict[str, Op]:
    """The elementwise ops that torch.nn has as a layer and a functional (relu, gelu, silu, ...), by name."""
    return {op.name: op for op in OPS.values() if getattr(op, "activation", False) and op.functional is not None}


def losses() -> dict[str, type]:
    """The losses a spec may use, by type: type = "cross_entropy"."""
    return dict(sorted((cls.kind, cls) for cls in layers().values() if is_loss(cls)))


def is_loss(cls: type) -> bool:
    return getattr(cls, "is_loss", False)


def functionals() -> dict[str, Callable]:
    """symprop.functional's names (F.relu, F.linear, F.elementwise_function): each op's functional, by its name."""
    return {op.functional.__name__: op.functional for op in OPS.values() if op.functional is not None}


def publics() -> dict[str, Callable]:
    """symprop.<name>: the elementwise functions (symprop.exp, symprop.maximum)."""
    return {op.name: op.public for op in OPS.values() if op.public is not None}


def expression_functions() -> dict[str, type]:
    """The functions a user's expression may call, by name: exp(z), sigmoid(z), Max(z, 0)."""
    return {name: op.sympy for op in OPS.values() if getattr(op, "sympy", None) is not None
            for name in op.expression_names}


def spelling(function: type, backend: str):
    """How `backend` prints a SymPy function, where an op says (a name, a Helper, or a callable (printer, expr));
    None: SymPy's own printing."""
    op = by_function(function)
    return op.spell.get(backend) if op is not None else None


def helpers() -> set[str]:
    """The names of the helper functions ops define in generated modules (NumPy's sigmoid and erf, scatter_add)."""
    return {spelled.name for op in OPS.values()
            for spelled in (*getattr(op, "spell", {}).values(), *getattr(op, "helpers", ()))
            if isinstance(spelled, Helper)}


def in_place(function: type, backend: str) -> str | None:
    """The name of `backend`'s call that applies a function into its argument's own array (exp: np.exp(a, out=a),
    torch.exp_(a)); None where it has none."""
    op = by_function(function)
    return op.in_place.get(backend) if op is not None else None


def cost(function: type, backend: str) -> float:
    """What one application of a function costs `backend`, in passes over the array (an add is 1)."""
    op = by_function(function)
    return op.cost.get(backend, 1.0) if op is not None else 1.0
