"""What every strategy shares: scored graph nodes and the evaluation of a list of children."""

from __future__ import annotations

from dataclasses import dataclass

from nsprog.search.graph import ProgramGraph, SearchNode
from nsprog.search.training import CandidateEvaluator, CandidateResult

__all__ = ["Scored", "score_nodes"]


@dataclass(frozen=True)
class Scored:
    """A graph node with its trained candidate: ``f = g + (1 - weighted F1)``."""

    node: SearchNode
    result: CandidateResult

    @property
    def f(self) -> float:
        return self.node.cost + self.result.score

    @property
    def complete(self) -> bool:
        return self.node.complete

    @property
    def trained(self) -> SearchNode:
        """The node with the trained parameters attached to its program."""
        return SearchNode(self.result.program, self.node.cost)


def score_nodes(graph: ProgramGraph, evaluator: CandidateEvaluator, nodes: list[SearchNode]) -> list[Scored]:
    """Train and score nodes in one batch; record them in the evaluator's history; best first."""
    results = evaluator.evaluate([n.program for n in nodes])
    scored = [Scored(n, r) for n, r in zip(nodes, results)]
    for s in scored:
        evaluator.history.append(
            {
                "program": s.node.program.key(),
                "g": round(s.node.cost, 6),
                "score": round(s.result.score, 6),
                "f": round(s.f, 6),
                "complete": s.complete,
                "epochs": s.result.epochs,
            }
        )
    return sorted(scored, key=lambda s: (s.f, s.node.program.key()))
