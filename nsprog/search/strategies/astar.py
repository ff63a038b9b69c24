"""A* over the program graph with the neural-relaxation heuristic.

Pops the open node with the lowest ``f = g + (1 - F1)``; a popped complete program is a
goal and is yielded (lazily: the caller takes the first, or more). The open list is capped
at ``frontier_size`` nodes (lowest ``f`` kept) and expansions at ``max_expansions``. An
expansion that leaves a single, incomplete open node (e.g. the root's only child) moves
to it without training it: it would be popped next whatever its score.

``min_batch > 1`` turns on batched expansion (a parallel A*): when the best open node has
fewer than ``min_batch`` children, the next-best incomplete open nodes are expanded with
it, until their children together reach ``min_batch``, and all of them are trained in one
batch. Goals are still yielded only when they are the lowest ``f`` on the open list, so
a goal is never accepted early; the price is training some children that sequential A*
might never have needed (they are cached, and often needed later).
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
    min_batch: int = 1,
) -> Iterator[Scored]:
    tie = itertools.count()
    heap: list = []
    expansions = 1
    kids = graph.children(start or graph.root())  # the children of the nodes being expanded
    while True:
        if kids:
            if not heap and len(kids) == 1 and not kids[0].complete and expansions < max_expansions:
                expansions += 1  # the only open node is popped next whatever its score: not trained
                kids = graph.children(kids[0])
                continue
            for s in score_nodes(graph, evaluator, kids):
                heapq.heappush(heap, (s.f, next(tie), s))
            if len(heap) > frontier_size:
                heap = heapq.nsmallest(frontier_size, heap)
                heapq.heapify(heap)
            kids = []
        if not heap:
            return
        _, _, best = heapq.heappop(heap)
        if best.complete:
            yield best
            continue
        if expansions >= max_expansions:
            return
        expansions += 1
        kids = graph.children(best.node)
        while len(kids) < min_batch and heap and not heap[0][2].complete and expansions < max_expansions:
            _, _, nxt = heapq.heappop(heap)
            expansions += 1
            kids += graph.children(nxt.node)
