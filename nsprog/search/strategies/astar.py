"""A* over the program graph with the neural-relaxation heuristic.

Pops the open node with the lowest ``f = g + (1 - F1)``; a popped complete program is a
goal and is yielded (lazily: the caller takes the first, or more). The open list is capped
at ``frontier_size`` nodes (lowest ``f`` kept) and expansions at ``max_expansions``.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Iterator

from nsprog.search.graph import ProgramGraph, SearchNode
from nsprog.search.strategies.base import Scored, score_nodes
from nsprog.search.training import CandidateEvaluator

__all__ = ["astar"]


def astar(
    graph: ProgramGraph,
    evaluator: CandidateEvaluator,
    frontier_size: int = 30,
    max_expansions: int = 200,
    start: SearchNode | None = None,
) -> Iterator[Scored]:
    tie = itertools.count()
    root = start or graph.root()
    heap: list = []
    expansions = 0
    to_expand = root
    while True:
        if to_expand is not None:
            expansions += 1
            for s in score_nodes(graph, evaluator, graph.children(to_expand)):
                heapq.heappush(heap, (s.f, next(tie), s))
            if len(heap) > frontier_size:
                heap = heapq.nsmallest(frontier_size, heap)
                heapq.heapify(heap)
        if not heap:
            return
        _, _, best = heapq.heappop(heap)
        if best.complete:
            yield best
            to_expand = None
            continue
        if expansions >= max_expansions:
            return
        to_expand = best.node
