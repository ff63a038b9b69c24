"""Search strategies over the program graph; each yields goal programs lazily."""

from nsprog.search.strategies.astar import astar
from nsprog.search.strategies.base import Scored, score_nodes
from nsprog.search.strategies.greedy import greedy, greedy_step
from nsprog.search.strategies.ids_bb import ids_bb
from nsprog.search.strategies.mc import mc

STRATEGIES = ("greedy", "astar", "ids_bb", "mc")

__all__ = ["astar", "greedy", "greedy_step", "ids_bb", "mc", "Scored", "score_nodes", "STRATEGIES"]
