"""Supervised program synthesis behind an estimator API."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterable, Literal

import numpy as np
import torch

from nsprog.dsl.definition import load_dsl
from nsprog.dsl.semantics import evaluate_program
from nsprog.dsl.types import ATOM, LIST, Sig, Type
from nsprog.search.executors import make_executor
from nsprog.search.graph import NoProgramError, ProgramGraph, SearchNode
from nsprog.search.strategies import STRATEGIES, Scored, astar, greedy, ids_bb, mc
from nsprog.search.training import CandidateEvaluator, Supervision, TrainSettings

__all__ = ["SearchSettings", "ProgramSearch", "run_strategy", "NotFittedError", "evaluate_program"]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``."""


@dataclass
class SearchSettings:
    """Program-search hyperparameters (the paper's Table 5 plus strategy options)."""

    strategy: Literal["greedy", "astar", "ids_bb", "mc"] = "astar"
    max_depth: int = 2
    penalty: float = 0.01
    frontier_size: int = 30
    max_expansions: int = 200
    min_batch: int = 1  # A*: expand the next-best open nodes too until a batch has this many children
    mc_samples: int = 20
    neural_epochs: int = 10
    symbolic_epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 32
    patience: int = 3
    max_units: int = 16
    min_units: int = 8
    executor: Literal["inline", "process"] = "inline"
    workers: int = 1
    fused: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        for name in ("max_depth", "frontier_size", "neural_epochs", "symbolic_epochs", "batch_size", "patience",
                     "max_units", "min_units", "workers", "mc_samples", "max_expansions",
                     "min_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(
            neural_epochs=self.neural_epochs, symbolic_epochs=self.symbolic_epochs, lr=self.lr,
            batch_size=self.batch_size, patience=self.patience, max_units=self.max_units, min_units=self.min_units,
        )


def run_strategy(
    settings: SearchSettings, graph: ProgramGraph, evaluator: CandidateEvaluator, seed: int = 0,
    start: SearchNode | None = None,
) -> Scored:
    """The best complete program a strategy finds below ``start`` (default: the root)."""
    s = settings.strategy
    if s == "greedy":
        found = list(greedy(graph, evaluator, start))
    elif s == "astar":
        found = []
        for goal in astar(graph, evaluator, settings.frontier_size, settings.max_expansions, start,
                          settings.min_batch):
            found.append(goal)
            break  # the first goal popped is the best under the heuristic
    elif s == "ids_bb":
        found = list(ids_bb(graph, evaluator, settings.frontier_size, start))
    else:
        found = list(mc(graph, evaluator, settings.mc_samples, seed, start))
    if not found:
        raise NoProgramError(f"strategy {s!r} found no complete program (frontier or expansion limit reached)")
    return min(found, key=lambda x: (x.f, x.node.program.key()))


class ProgramSearch:
    """Finds the program of a DSL that best predicts labels from standardised features.

    Parameters
    ----------
    dsl : DSL or str
        The domain language (a shipped name, a YAML path or a DSL).
    settings : SearchSettings, optional
    seed : int, default=0
    device : str, default="cpu"
    exclude : iterable of str
        Structural keys of complete programs not to return (Algorithm 2).
    progress : bool, default=False
        Show per-candidate-batch progress bars.

    Attributes (after ``fit``)
    --------------------------
    program_ : the best complete program, with parameters
    classes_ : the label values, in the order of the program's outputs
    val_f1_, val_score_, structural_cost_ : its validation weighted F1, ``1 - F1`` and ``g``
    history_ : every evaluated candidate (program, g, score, f, complete, epochs)
    n_candidates_, seconds_ : candidates trained and wall time
    """

    def __init__(self, dsl, settings: SearchSettings | None = None, seed: int = 0, device: str = "cpu",
                 exclude: Iterable[str] = (), progress: bool = False):
        self.dsl = dsl
        self.settings = settings
        self.seed = seed
        self.device = device
        self.exclude = exclude
        self.progress = progress

    def fit(self, x_train: torch.Tensor, y_train, x_val: torch.Tensor, y_val) -> "ProgramSearch":
        dsl = load_dsl(self.dsl)
        settings = self.settings or SearchSettings()
        y_train = np.asarray(y_train)
        y_val = np.asarray(y_val)
        classes = np.unique(y_train)
        unknown = np.setdiff1d(np.unique(y_val), classes)
        if unknown.size:
            raise ValueError(f"validation labels {unknown.tolist()} do not occur in the training labels {classes.tolist()}")
        if x_train.shape[-1] != dsl.n_features:
            raise ValueError(
                f"features have {x_train.shape[-1]} columns but DSL {dsl.name!r} expects {dsl.n_features} "
                f"({', '.join(dsl.features)})"
            )
        sup = Supervision(
            x_train.float(), torch.as_tensor(np.searchsorted(classes, y_train)),
            x_val.float(), torch.as_tensor(np.searchsorted(classes, y_val)), n_classes=max(2, len(classes)),
        )
        kind = LIST if x_train.dim() == 3 else ATOM
        start = Sig(Type(kind, dsl.n_features), Type(ATOM, sup.out_dim))
        graph = ProgramGraph(dsl, start, settings.max_depth, settings.penalty, self.exclude)
        executor = make_executor(settings.executor, settings.workers)
        evaluator = CandidateEvaluator(
            sup, dsl, settings.train_settings(), self.seed, str(self.device), executor, settings.fused, self.progress,
        )
        t0 = time.perf_counter()
        try:
            best = run_strategy(settings, graph, evaluator, self.seed)
        finally:
            executor.shutdown()
        self.seconds_ = time.perf_counter() - t0
        self.dsl_ = dsl
        self.settings_ = settings
        self.classes_ = classes
        self.program_ = best.result.program
        self.val_f1_ = best.result.f1
        self.val_score_ = best.result.score
        self.structural_cost_ = best.node.cost
        self.history_ = list(evaluator.history)
        self.n_candidates_ = evaluator.n_trained
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "program_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first")

    def decision_function(self, x: torch.Tensor) -> np.ndarray:
        """Program outputs (logits): ``[N]`` for binary labels, ``[N, n_classes]`` otherwise."""
        self._check_fitted()
        out = evaluate_program(self.program_, self.dsl_, x.float()).cpu().numpy()
        return out[:, 0] if out.shape[-1] == 1 else out

    def predict(self, x: torch.Tensor) -> np.ndarray:
        out = self.decision_function(x)
        idx = (out > 0).astype(int) if out.ndim == 1 else out.argmax(-1)
        return self.classes_[idx]

    def get_params(self, deep: bool = False) -> dict:
        return {k: getattr(self, k) for k in ("dsl", "settings", "seed", "device", "exclude", "progress")}

    def summary(self) -> dict:
        self._check_fitted()
        return {
            "program": self.program_.key(),
            "val_f1": self.val_f1_,
            "structural_cost": self.structural_cost_,
            "candidates_trained": self.n_candidates_,
            "seconds": self.seconds_,
            "settings": asdict(self.settings_),
        }
