"""Monte-Carlo sampling: draw random complete programs, train them together, rank them."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from nsprog.search.graph import NoProgramError, ProgramGraph, SearchNode
from nsprog.search.strategies.base import Scored, score_nodes
from nsprog.search.training import CandidateEvaluator

__all__ = ["mc"]


def mc(
    graph: ProgramGraph, evaluator: CandidateEvaluator, n_samples: int = 20, seed: int = 0,
    start: SearchNode | None = None,
) -> Iterator[Scored]:
    """Yield the sampled programs best first (distinct structures; deterministic under ``seed``)."""
    rng = np.random.default_rng(seed)
    nodes, seen = [], set()
    for _ in range(n_samples * 5):
        if len(nodes) >= n_samples:
            break
        try:
            node = graph.sample_complete(rng, start)
        except NoProgramError:
            break
        key = node.program.key()
        if key not in seen:
            seen.add(key)
            nodes.append(node)
    if not nodes:
        raise NoProgramError("Monte-Carlo sampling found no complete program")
    yield from score_nodes(graph, evaluator, nodes)
