"""Immutable program trees.

Nodes are frozen dataclasses. Equality and hashing are *structural*: learned parameters
(``params``) are carried along but excluded from comparison, so ``hash(program)`` is the
structural hash used to cache search scores. Edits return new trees.

Productions (the paper's sequence DSL):

* ``MapAverage(fn: atom->atom) : list->atom``   mean over t of fn(x_t)
* ``Map(fn: atom->atom) : list->list``
* ``MapPrefixes(fn: list->atom) : list->list``  fn applied to every prefix x_{1..t}
* ``RunningAverage(fn: atom->atom, window) : list->list``  mean of fn over the last ``window`` steps
* ``ITE(cond, then, orelse)`` at any level: gate = sigmoid(beta * cond(x)),
  output = gate * then(x) + (1 - gate) * orelse(x)
* ``Add(a, b)``, ``Multiply(a, b)``
* ``Affine[library](features) : atom->atom``  a learned affine map of named features
* ``Hole``: a nonterminal, evaluated as a neural module (GRU for list inputs, MLP for atoms)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from nsprog.dsl.types import Sig

__all__ = [
    "Node",
    "Hole",
    "Affine",
    "MapAverage",
    "Map",
    "MapPrefixes",
    "RunningAverage",
    "ITE",
    "Add",
    "Multiply",
    "NODE_TYPES",
    "iter_nodes",
    "holes",
    "replace_at",
    "depth",
    "is_complete",
    "with_params",
    "clear_params",
    "structural_key",
]


def _freeze(params: Mapping[str, Any] | None):
    if params is None:
        return None
    out = {}
    for k, v in params.items():
        a = np.array(v, dtype=np.float32)
        a.setflags(write=False)
        out[str(k)] = a
    return out


@dataclass(frozen=True)
class Node:
    """Base class of program nodes; ``sig`` is the node's function type."""

    sig: Sig
    params: Mapping[str, np.ndarray] | None = field(default=None, compare=False, hash=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _freeze(self.params))

    child_names: ClassVar[tuple[str, ...]] = ()

    @property
    def production(self) -> str:
        return type(self).__name__

    @property
    def children(self) -> tuple["Node", ...]:
        return tuple(getattr(self, n) for n in self.child_names)

    def with_children(self, children: tuple["Node", ...]) -> "Node":
        if len(children) != len(self.child_names):
            raise ValueError(f"{self.production} takes {len(self.child_names)} children; got {len(children)}")
        return replace(self, **dict(zip(self.child_names, children)), params=self.params)

    def key(self) -> str:
        """Structural description without parameters, e.g. ``MapAverage(Affine[FinalX])``."""
        inner = ", ".join(c.key() for c in self.children)
        return f"{self.production}({inner})"


@dataclass(frozen=True)
class Hole(Node):
    def key(self) -> str:
        return f"??[{self.sig}]"


@dataclass(frozen=True)
class Affine(Node):
    library: str = ""
    features: tuple[str, ...] = ()

    def key(self) -> str:
        return f"{self.library}Affine"


@dataclass(frozen=True)
class MapAverage(Node):
    fn: Node = None  # type: ignore[assignment]
    child_names: ClassVar[tuple[str, ...]] = ("fn",)


@dataclass(frozen=True)
class Map(Node):
    fn: Node = None  # type: ignore[assignment]
    child_names: ClassVar[tuple[str, ...]] = ("fn",)


@dataclass(frozen=True)
class MapPrefixes(Node):
    fn: Node = None  # type: ignore[assignment]
    child_names: ClassVar[tuple[str, ...]] = ("fn",)


@dataclass(frozen=True)
class RunningAverage(Node):
    fn: Node = None  # type: ignore[assignment]
    window: int = 5
    child_names: ClassVar[tuple[str, ...]] = ("fn",)

    def key(self) -> str:
        return f"RunningAverage{self.window}({self.fn.key()})"


@dataclass(frozen=True)
class ITE(Node):
    cond: Node = None  # type: ignore[assignment]
    then: Node = None  # type: ignore[assignment]
    orelse: Node = None  # type: ignore[assignment]
    beta: float = 1.0
    child_names: ClassVar[tuple[str, ...]] = ("cond", "then", "orelse")


@dataclass(frozen=True)
class Add(Node):
    a: Node = None  # type: ignore[assignment]
    b: Node = None  # type: ignore[assignment]
    child_names: ClassVar[tuple[str, ...]] = ("a", "b")


@dataclass(frozen=True)
class Multiply(Node):
    a: Node = None  # type: ignore[assignment]
    b: Node = None  # type: ignore[assignment]
    child_names: ClassVar[tuple[str, ...]] = ("a", "b")


NODE_TYPES: dict[str, type[Node]] = {
    cls.__name__: cls for cls in (Hole, Affine, MapAverage, Map, MapPrefixes, RunningAverage, ITE, Add, Multiply)
}


Path = tuple[int, ...]


def iter_nodes(node: Node, path: Path = (), level: int = 1) -> Iterator[tuple[Path, int, Node]]:
    """Pre-order ``(path, depth, node)``; the root has depth 1 and path ``()``."""
    yield path, level, node
    for i, c in enumerate(node.children):
        yield from iter_nodes(c, path + (i,), level + 1)


def holes(node: Node) -> list[tuple[Path, int, Hole]]:
    """All holes in pre-order with their paths and depths."""
    return [(p, d, n) for p, d, n in iter_nodes(node) if isinstance(n, Hole)]


def is_complete(node: Node) -> bool:
    return not holes(node)


def depth(node: Node) -> int:
    return max(d for _, d, _ in iter_nodes(node))


def replace_at(node: Node, path: Path, new: Node) -> Node:
    """A copy of ``node`` with the subtree at ``path`` replaced by ``new``."""
    if not path:
        return new
    kids = list(node.children)
    kids[path[0]] = replace_at(kids[path[0]], path[1:], new)
    return node.with_children(tuple(kids))


def with_params(node: Node, params_by_path: Mapping[Path, Mapping[str, Any] | None]) -> Node:
    """A copy whose nodes carry the given parameters (paths absent from the mapping keep theirs)."""
    kids = tuple(
        with_params(c, {p[1:]: v for p, v in params_by_path.items() if p and p[0] == i})
        for i, c in enumerate(node.children)
    )
    new = node.with_children(kids) if kids else node
    if () in params_by_path:
        new = replace(new, params=params_by_path[()])
    return new


def clear_params(node: Node) -> Node:
    kids = tuple(clear_params(c) for c in node.children)
    new = node.with_children(kids) if kids else node
    return replace(new, params=None)


def structural_key(node: Node) -> str:
    return node.key()


def _check_fields():
    # child fields must come from child_names only; a guard against editing mistakes
    for cls in NODE_TYPES.values():
        names = {f.name for f in fields(cls)}
        missing = set(cls.child_names) - names
        if missing:
            raise TypeError(f"{cls.__name__}: child fields {missing} are not dataclass fields")


_check_fields()
