"""Greedy search: fill one hole, train all children, keep the best (the paper's encoder step)."""

from __future__ import annotations

from typing import Iterator

from nsprog.search.graph import NoProgramError, ProgramGraph, SearchNode
from nsprog.search.strategies.base import Scored, score_nodes
from nsprog.search.training import CandidateEvaluator

__all__ = ["greedy_step", "greedy"]


def greedy_step(graph: ProgramGraph, evaluator: CandidateEvaluator, node: SearchNode,
                kids: list[SearchNode] | None = None) -> list[Scored]:
    """All children of ``node`` (``kids`` when the caller has them), trained and scored, best first."""
    kids = graph.children(node) if kids is None else kids
    if not kids:
        raise NoProgramError(f"no feasible child of {node.program.key()} (all completions excluded or too deep)")
    return score_nodes(graph, evaluator, kids)


def greedy(graph: ProgramGraph, evaluator: CandidateEvaluator, start: SearchNode | None = None) -> Iterator[Scored]:
    """Repeat the greedy step from ``start`` (default: the root) until the program is complete.

    A node with a single, incomplete child moves to it without training it (the choice is
    forced); complete programs are always trained, since they are the result.
    """
    node = start or graph.root()
    while True:
        kids = graph.children(node)
        if len(kids) == 1 and not kids[0].complete:
            node = kids[0]  # a forced move: its score could not change the choice, so it is not trained
            continue
        best = greedy_step(graph, evaluator, node, kids)[0]
        if best.complete:
            yield best
            return
        node = best.node
