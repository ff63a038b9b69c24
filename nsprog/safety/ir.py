"""A small program IR for programs that mix neural modules with branching code.

A program state is a fixed set of named real variables. Statements:

- :class:`Assign` ``targets = value``: an arithmetic :class:`Expr`, a tuple of expressions
  (a *simultaneous* assignment: every right-hand side reads the old state), or a
  :class:`Call` of a neural module whose outputs go to the targets in order.
- :class:`If` ``if var <= threshold: then else: orelse``.
- :class:`Loop` a fixed number of repetitions of a body.
- :class:`Record` appends chosen variables to the trajectory (checked against the spec).

:func:`argmax` lowers "pick the branch of the largest score" to pairwise comparisons of
score differences against 0 (ties go to the lower index, like ``torch.argmax``).

Expressions are built with Python operators: ``V("x") * 0.95 + V("h") * 15``.
Programs are plain data (frozen dataclasses); the interpreters in
:mod:`nsprog.safety.interpret` give them concrete, join and sampled-symbolic meanings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence, Union

__all__ = [
    "Expr", "Var", "Const", "BinOp", "UnOp", "Clamp", "V",
    "Call", "Assign", "If", "Loop", "Record", "Stmt",
    "Program", "ModuleSig", "ProgramError", "argmax", "assign", "if_le", "loop", "record",
]


class ProgramError(ValueError):
    """A malformed program (unknown variable, inconsistent module use, misplaced record...)."""


# --------------------------------------------------------------------------- expressions
class Expr:
    """Base class of arithmetic expressions; supports ``+ - *``, unary ``-`` and helpers."""

    def _wrap(self, other) -> "Expr":
        if isinstance(other, Expr):
            return other
        if isinstance(other, (int, float)):
            return Const(float(other))
        raise TypeError(f"cannot combine an expression with {type(other).__name__}")

    def __add__(self, other):
        return BinOp("add", self, self._wrap(other))

    def __radd__(self, other):
        return BinOp("add", self._wrap(other), self)

    def __sub__(self, other):
        return BinOp("sub", self, self._wrap(other))

    def __rsub__(self, other):
        return BinOp("sub", self._wrap(other), self)

    def __mul__(self, other):
        return BinOp("mul", self, self._wrap(other))

    def __rmul__(self, other):
        return BinOp("mul", self._wrap(other), self)

    def __neg__(self):
        return UnOp("neg", self)

    def square(self) -> "Expr":
        return UnOp("square", self)

    def abs(self) -> "Expr":
        return UnOp("abs", self)

    def relu(self) -> "Expr":
        return UnOp("relu", self)

    def sigmoid(self) -> "Expr":
        return UnOp("sigmoid", self)

    def tanh(self) -> "Expr":
        return UnOp("tanh", self)

    def clamp(self, lo: float | None = None, hi: float | None = None) -> "Expr":
        return Clamp(self, lo, hi)

    def variables(self) -> set[str]:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Var(Expr):
    name: str

    def variables(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: float

    def variables(self) -> set[str]:
        return set()

    def __str__(self) -> str:
        return f"{self.value:g}"


_BINOPS = {"add": "+", "sub": "-", "mul": "*"}
_UNOPS = ("neg", "square", "abs", "relu", "sigmoid", "tanh")


@dataclass(frozen=True, eq=False)
class BinOp(Expr):
    op: str
    a: Expr
    b: Expr

    def __post_init__(self):
        if self.op not in _BINOPS:
            raise ProgramError(f"BinOp: unknown operator {self.op!r}; expected one of {', '.join(_BINOPS)}")

    def variables(self) -> set[str]:
        return self.a.variables() | self.b.variables()

    def __str__(self) -> str:
        return f"({self.a} {_BINOPS[self.op]} {self.b})"


@dataclass(frozen=True, eq=False)
class UnOp(Expr):
    op: str
    a: Expr

    def __post_init__(self):
        if self.op not in _UNOPS:
            raise ProgramError(f"UnOp: unknown operator {self.op!r}; expected one of {', '.join(_UNOPS)}")

    def variables(self) -> set[str]:
        return self.a.variables()

    def __str__(self) -> str:
        return f"-{self.a}" if self.op == "neg" else f"{self.op}({self.a})"


@dataclass(frozen=True, eq=False)
class Clamp(Expr):
    a: Expr
    lo: float | None = None
    hi: float | None = None

    def variables(self) -> set[str]:
        return self.a.variables()

    def __str__(self) -> str:
        return f"clamp({self.a}, {self.lo}, {self.hi})"


def V(name: str) -> Var:
    """Shorthand for :class:`Var`."""
    return Var(name)


# --------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Call:
    """Apply neural module ``module`` to the variables ``inputs`` (in order)."""

    module: str
    inputs: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))

    def __str__(self) -> str:
        return f"{self.module}({', '.join(self.inputs)})"


@dataclass(frozen=True)
class Assign:
    targets: tuple[str, ...]
    value: Union[Expr, Call, tuple]

    def __post_init__(self):
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        object.__setattr__(self, "targets", targets)
        if not targets:
            raise ProgramError("Assign needs at least one target variable")
        if len(set(targets)) != len(targets):
            raise ProgramError(f"Assign: duplicate targets {targets}")
        value = self.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = Const(float(value))
            object.__setattr__(self, "value", value)
        if isinstance(value, (list, tuple)):
            value = tuple(Const(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value)
            object.__setattr__(self, "value", value)
            if len(value) != len(targets):
                raise ProgramError(
                    f"Assign to {targets}: {len(targets)} targets but {len(value)} expressions; expected equal"
                )
            for v in value:
                if not isinstance(v, Expr):
                    raise ProgramError(f"Assign to {targets}: expected expressions, got {type(v).__name__}")
        elif isinstance(value, Expr):
            if len(targets) != 1:
                raise ProgramError(f"Assign: one expression cannot fill {len(targets)} targets {targets}")
        elif not isinstance(value, Call):
            raise ProgramError(f"Assign to {targets}: value must be an Expr, a tuple of Expr or a Call")

    def reads(self) -> set[str]:
        if isinstance(self.value, Call):
            return set(self.value.inputs)
        if isinstance(self.value, tuple):
            return set().union(*(v.variables() for v in self.value))
        return self.value.variables()

    def __str__(self) -> str:
        val = ", ".join(map(str, self.value)) if isinstance(self.value, tuple) else str(self.value)
        return f"{', '.join(self.targets)} = {val}"


@dataclass(frozen=True)
class If:
    """``if var <= threshold: then else: orelse`` (the guard is over one variable)."""

    var: str
    threshold: float
    then: tuple = ()
    orelse: tuple = ()
    writes: frozenset = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "then", tuple(self.then))
        object.__setattr__(self, "orelse", tuple(self.orelse))
        object.__setattr__(self, "threshold", float(self.threshold))
        w = set(_writes(self.then)) | set(_writes(self.orelse)) | {self.var}
        object.__setattr__(self, "writes", frozenset(w))


@dataclass(frozen=True)
class Loop:
    n: int
    body: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "body", tuple(self.body))
        if not isinstance(self.n, int) or self.n < 0:
            raise ProgramError(f"Loop: the repetition count must be an integer >= 0; got {self.n!r}")


@dataclass(frozen=True)
class Record:
    vars: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "vars", (self.vars,) if isinstance(self.vars, str) else tuple(self.vars))


Stmt = Union[Assign, If, Loop, Record]


def _walk(stmts: Iterable) -> Iterator:
    for s in stmts:
        yield s
        if isinstance(s, If):
            yield from _walk(s.then)
            yield from _walk(s.orelse)
        elif isinstance(s, Loop):
            yield from _walk(s.body)


def _writes(stmts: Iterable) -> set[str]:
    out: set[str] = set()
    for s in _walk(stmts):
        if isinstance(s, Assign):
            out.update(s.targets)
    return out


# --------------------------------------------------------------------------- builders
def assign(targets, value) -> Assign:
    return Assign(targets, value)


def if_le(var: str, threshold: float, then: Sequence = (), orelse: Sequence = ()) -> If:
    return If(var, threshold, tuple(then), tuple(orelse))


def loop(n: int, body: Sequence) -> Loop:
    return Loop(n, tuple(body))


def record(*names: str) -> Record:
    return Record(tuple(names))


def argmax(scores: Sequence[str], branches: Sequence[Sequence], prefix: str) -> list:
    """Lower ``branches[argmax(scores)]`` to score differences and nested :class:`If` nodes.

    Computes ``d_ij = s_j - s_i`` for every pair ``i < j`` into temporaries named
    ``{prefix}_d{i}_{j}``, then walks a tournament: the current leader ``i`` keeps the lead
    against ``j`` iff ``d_ij <= 0``. Ties go to the lower index, as with ``torch.argmax``.
    """
    k = len(scores)
    if k < 2:
        raise ProgramError(f"argmax needs at least 2 scores; got {k}")
    if len(branches) != k:
        raise ProgramError(f"argmax: {k} scores but {len(branches)} branches; expected one branch per score")
    stmts: list = []
    names = {}
    for j in range(1, k):
        for i in range(j):
            names[i, j] = f"{prefix}_d{i}_{j}"
            stmts.append(Assign((names[i, j],), Var(scores[j]) - Var(scores[i])))

    def lower(leader: int, j: int) -> tuple:
        if j == k:
            return tuple(branches[leader])
        return (If(names[leader, j], 0.0, lower(leader, j + 1), lower(j, j + 1)),)

    return stmts + list(lower(0, 1))


# --------------------------------------------------------------------------- programs
@dataclass(frozen=True)
class ModuleSig:
    n_in: int
    n_out: int


@dataclass(frozen=True)
class Program:
    """A validated program.

    Parameters
    ----------
    name : str
    inputs : tuple of str
        Variables initialised from the input box, in the order of its dimensions.
    body : tuple of statements
    init : mapping, optional
        Constant initial values of other variables (every other variable starts at 0).
    """

    name: str
    inputs: tuple[str, ...]
    body: tuple
    init: Mapping[str, float] = field(default_factory=dict)
    variables: tuple[str, ...] = field(init=False)
    modules: Mapping[str, ModuleSig] = field(init=False)
    record_counts: Mapping[str, int] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "body", tuple(self.body))
        object.__setattr__(self, "init", {k: float(v) for k, v in dict(self.init).items()})
        problems: list[str] = []
        if len(set(self.inputs)) != len(self.inputs):
            problems.append(f"duplicate input variables {self.inputs}")
        both = set(self.inputs) & set(self.init)
        if both:
            problems.append(f"variables {sorted(both)} are both inputs and constants in init")
        variables = list(self.inputs) + [v for v in self.init if v not in self.inputs]
        for v in sorted(_writes(self.body)):
            if v not in variables:
                variables.append(v)
        known = set(variables)
        modules: dict[str, ModuleSig] = {}
        for s in _walk(self.body):
            if isinstance(s, Assign):
                missing = s.reads() - known
                if missing:
                    problems.append(f"assignment '{s}' reads unknown variable(s) {sorted(missing)}")
                if isinstance(s.value, Call):
                    sig = ModuleSig(len(s.value.inputs), len(s.targets))
                    old = modules.setdefault(s.value.module, sig)
                    if old != sig:
                        problems.append(
                            f"module {s.value.module!r} is called with {sig.n_in} inputs/{sig.n_out} outputs here but "
                            f"{old.n_in}/{old.n_out} elsewhere"
                        )
            elif isinstance(s, If):
                if s.var not in known:
                    problems.append(f"guard '{s.var} <= {s.threshold:g}' tests unknown variable {s.var!r}")
                for inner in _walk(s.then + s.orelse):
                    if isinstance(inner, Record):
                        problems.append(
                            f"record of {inner.vars} inside the branch on {s.var!r}: records must not be inside "
                            "if-then-else (every path records the same steps)"
                        )
            elif isinstance(s, Record):
                missing = set(s.vars) - known
                if missing:
                    problems.append(f"record of unknown variable(s) {sorted(missing)}")
        if problems:
            raise ProgramError(f"program {self.name!r} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
        counts: dict[str, int] = {}
        _count_records(self.body, 1, counts)
        object.__setattr__(self, "variables", tuple(variables))
        object.__setattr__(self, "modules", modules)
        object.__setattr__(self, "record_counts", counts)

    @property
    def recorded(self) -> tuple[str, ...]:
        return tuple(self.record_counts)

    def pretty(self) -> str:
        """Readable multi-line text of the program."""
        lines = [f"program {self.name}(inputs: {', '.join(self.inputs)})"]
        _pretty(self.body, 1, lines)
        return "\n".join(lines)


def _count_records(stmts, mult: int, counts: dict) -> None:
    for s in stmts:
        if isinstance(s, Record):
            for v in s.vars:
                counts[v] = counts.get(v, 0) + mult
        elif isinstance(s, Loop):
            _count_records(s.body, mult * s.n, counts)


def _pretty(stmts, depth: int, lines: list) -> None:
    pad = "  " * depth
    for s in stmts:
        if isinstance(s, Assign):
            lines.append(pad + str(s))
        elif isinstance(s, Record):
            lines.append(pad + f"record {', '.join(s.vars)}")
        elif isinstance(s, Loop):
            lines.append(pad + f"repeat {s.n}:")
            _pretty(s.body, depth + 1, lines)
        elif isinstance(s, If):
            lines.append(pad + f"if {s.var} <= {s.threshold:g}:")
            _pretty(s.then, depth + 1, lines)
            lines.append(pad + "else:")
            _pretty(s.orelse, depth + 1, lines)
