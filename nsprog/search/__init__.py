"""NEAR-style program search: program graph, candidate training, strategies, estimator."""

from nsprog.executors import InlineExecutor, make_executor
from nsprog.search.graph import NoProgramError, ProgramGraph, SearchNode
from nsprog.search.strategies import STRATEGIES, astar, greedy, greedy_step, ids_bb, mc
from nsprog.search.synthesis import ProgramSearch, SearchSettings, evaluate_program, run_strategy
from nsprog.search.training import CandidateEvaluator, CandidateResult, Supervision, TrainSettings, train_candidates

__all__ = [
    "ProgramGraph", "SearchNode", "NoProgramError", "STRATEGIES", "astar", "greedy", "greedy_step", "ids_bb", "mc",
    "ProgramSearch", "SearchSettings", "run_strategy", "evaluate_program", "CandidateEvaluator",
    "CandidateResult", "Supervision", "TrainSettings", "train_candidates", "InlineExecutor", "make_executor",
]
