"""The program graph: nodes are partial programs, edges fill the first hole.

A child fills the first hole (pre-order) with every production the DSL allows for the
hole's signature. Its structural cost ``g`` adds ``penalty`` x the holes the production
introduces (or the DSL's cost override). Children that cannot be completed within
``max_depth`` are pruned using the minimum completion depth of each signature, so a search
never enters a dead end; complete programs whose structure is in ``exclude`` (programs
learned earlier, Algorithm 2) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from nsprog.dsl.ast import Hole, Node, holes, is_complete, replace_at
from nsprog.dsl.definition import DSL
from nsprog.dsl.grammar import expand, min_depths, production_cost
from nsprog.dsl.types import Sig

__all__ = ["SearchNode", "ProgramGraph", "NoProgramError"]


class NoProgramError(ValueError):
    """The DSL cannot produce any (further) complete program under the search's limits."""


@dataclass(frozen=True)
class SearchNode:
    program: Node
    cost: float  # structural cost g

    @property
    def complete(self) -> bool:
        return is_complete(self.program)


class ProgramGraph:
    def __init__(
        self,
        dsl: DSL,
        start: Sig,
        max_depth: int,
        penalty: float = 0.01,
        exclude: Iterable[str] = (),
    ):
        self.dsl = dsl
        self.start = start
        self.max_depth = int(max_depth)
        self.penalty = float(penalty)
        self.exclude = frozenset(exclude)
        if start.inp.dim != dsl.n_features:
            raise ValueError(
                f"start signature {start} reads {start.inp.dim} features but DSL {dsl.name!r} has {dsl.n_features}"
            )
        self._min = min_depths(dsl)
        need = self._min[start.kinds]
        if need == float("inf"):
            raise NoProgramError(
                f"DSL {dsl.name!r} cannot produce any complete {start.kinds} program: no production chain "
                f"ends in a library function (productions: {dict(dsl.productions)})"
            )
        if need > self.max_depth:
            raise NoProgramError(
                f"DSL {dsl.name!r} needs depth >= {need} for a complete {start.kinds} program; max_depth is "
                f"{self.max_depth}"
            )

    def root(self) -> SearchNode:
        return SearchNode(Hole(self.start), 0.0)

    def feasible(self, program: Node, max_depth: int | None = None) -> bool:
        limit = self.max_depth if max_depth is None else max_depth
        return all(level + self._min[h.sig.kinds] - 1 <= limit for _, level, h in holes(program))

    def children(self, node: SearchNode, max_depth: int | None = None) -> list[SearchNode]:
        """Every feasible way of filling the first hole of ``node``."""
        hs = holes(node.program)
        if not hs:
            return []
        path, _, hole = hs[0]
        out = []
        for prod in self.dsl.production_names(hole.sig.kinds):
            child = replace_at(node.program, path, expand(prod, hole.sig, self.dsl))
            if not self.feasible(child, max_depth):
                continue
            if is_complete(child) and child.key() in self.exclude:
                continue
            out.append(SearchNode(child, node.cost + production_cost(prod, hole.sig.kinds, self.dsl, self.penalty)))
        return out

    def count_complete(self, limit: int = 10_000) -> int:
        """Number of distinct complete programs reachable (stops counting at ``limit``)."""
        count, stack = 0, [self.root()]
        while stack and count < limit:
            node = stack.pop()
            for c in self.children(node):
                if c.complete:
                    count += 1
                else:
                    stack.append(c)
        return count

    def sample_complete(self, rng: np.random.Generator, start: SearchNode | None = None, tries: int = 100) -> SearchNode:
        """A random complete program: fill holes with uniformly chosen feasible productions."""
        for _ in range(tries):
            node = start or self.root()
            while not node.complete:
                kids = self.children(node)
                if not kids:
                    break
                node = kids[int(rng.integers(len(kids)))]
            if node.complete:
                return node
        raise NoProgramError("could not sample a complete program (all reachable programs are excluded?)")
