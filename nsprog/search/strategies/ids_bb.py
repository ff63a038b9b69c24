"""Iterative-deepening depth-first search with branch and bound (NEAR's IDS-BB).

For depth limits from the shallowest complete program up to ``max_depth``: dive depth-first
into the best child, keep the other children on a frontier (at most ``frontier_size``,
lowest ``f`` kept), and prune every node whose ``f`` is not below the best complete
program found so far (the bound). Each improvement of the bound is yielded, so the last
yielded program is the best. Scores are cached by structure, so deeper iterations re-use
the shallower ones' training. A single incomplete child is entered untrained while no
bound exists (its score could change nothing).
"""

from __future__ import annotations

from typing import Iterator

from nsprog.dsl.grammar import min_depths
from nsprog.search.graph import ProgramGraph, SearchNode
from nsprog.search.strategies.base import Scored, score_nodes
from nsprog.search.training import CandidateEvaluator

__all__ = ["ids_bb"]


def ids_bb(
    graph: ProgramGraph, evaluator: CandidateEvaluator, frontier_size: int = 30, start: SearchNode | None = None
) -> Iterator[Scored]:
    bound = float("inf")
    first = int(min_depths(graph.dsl)[graph.start.kinds])
    for limit in range(first, graph.max_depth + 1):
        frontier: list[Scored] = []
        current = start or graph.root()
        while True:
            kids = graph.children(current, max_depth=limit)
            if len(kids) == 1 and not kids[0].complete and bound == float("inf"):
                current = kids[0]  # forced: nothing to prune it against yet, so it is not trained
                continue
            scored = score_nodes(graph, evaluator, kids) if kids else []
            for s in scored:
                if s.complete and s.f < bound:
                    bound = s.f
                    yield s
            open_ = [s for s in scored if not s.complete and s.f < bound]
            frontier.extend(open_[1:])
            frontier = sorted((s for s in frontier if s.f < bound), key=lambda s: s.f)[:frontier_size]
            if open_:
                current = open_[0].node
            elif frontier:
                current = frontier.pop(0).node
            else:
                break
