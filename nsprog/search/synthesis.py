"""Supervised program synthesis behind an estimator API."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterable, Literal

import numpy as np
import torch

from nsprog.base import Estimator
from nsprog.config import from_dict
from nsprog.gru_kernel import native_kernels
from nsprog.dsl.definition import load_dsl
from nsprog.dsl.semantics import evaluate_program
from nsprog.dsl.types import ATOM, LIST, Sig, Type
from nsprog.executors import make_executor
from nsprog.search.graph import NoProgramError, ProgramGraph, SearchNode
from nsprog.search.strategies import Scored, astar, greedy, ids_bb, mc
from nsprog.search.training import CandidateEvaluator, Supervision, TrainSettings
from nsprog.settings import Settings, param
from nsprog.utils import limit_threads

__all__ = ["SearchSettings", "ProgramSearch", "run_strategy", "evaluate_program"]


@dataclass
class SearchSettings(Settings):
    """Program-search hyperparameters (the paper's Table 5 plus strategy options).

    The defaults are what ``nsprog search`` uses without a config (A*). The encoder's
    distillation uses :class:`nsprog.encoder.DistillSettings`, the same fields with the
    paper's one-step ``greedy`` strategy as its default.
    """

    strategy: Literal["greedy", "astar", "ids_bb", "mc"] = "astar"
    max_depth: int = param(2, ge=1)
    penalty: float = param(0.01, ge=0)
    frontier_size: int = param(30, ge=1)
    max_expansions: int = param(200, ge=1)
    min_batch: int = param(1, ge=1)  # A*: expand the next-best open nodes too until a batch has this many children
    mc_samples: int = param(20, ge=1)
    neural_epochs: int = param(10, ge=1)
    symbolic_epochs: int = param(10, ge=1)
    lr: float = param(1e-3, gt=0)
    batch_size: int = param(32, ge=1)
    patience: int = param(3, ge=1)
    max_units: int = param(16, ge=1)
    min_units: int = param(8, ge=1)
    executor: Literal["inline", "process"] = "inline"
    workers: int = param(1, ge=1)
    fused: bool = True

    def _extra_checks(self) -> list[str]:
        if self.min_units > self.max_units:
            return [f"min_units: expected a value <= max_units ({self.max_units}); got {self.min_units}"]
        return []

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


class ProgramSearch(Estimator):
    """Finds the program of a DSL that best predicts labels from standardised features.

    Parameters
    ----------
    dsl : DSL or str
        The domain language (a shipped name, a YAML path or a DSL).
    settings : SearchSettings or dict, optional
        A dict sets some keys and keeps the defaults of the rest.
    seed : int, default=0
    device : str, default="cpu"
    exclude : iterable of str
        Structural keys of complete programs not to return (Algorithm 2).
    progress : bool, default=False
        Show per-candidate-batch progress bars.
    threads : int or None, default=1
        Torch and BLAS threads for the duration of ``fit`` (restored afterwards); None keeps
        the current setting.
    accelerate : bool, default=True
        Use the native GRU kernels where available (:mod:`nsprog.gru_kernel`).

    Attributes (after ``fit``)
    --------------------------
    program_ : the best complete program, with parameters
    classes_ : the label values, in the order of the program's outputs
    val_f1_, val_score_, structural_cost_ : its validation weighted F1, ``1 - F1`` and ``g``
    history_ : every evaluated candidate (program, g, score, f, complete, epochs)
    n_candidates_, seconds_ : candidates trained and wall time
    """

    _fitted_attributes = ("program_", "classes_", "dsl_")

    def __init__(self, dsl="synthetic", settings: SearchSettings | None = None, seed: int = 0, device: str = "cpu",
                 exclude: Iterable[str] = (), progress: bool = False, threads: int | None = 1,
                 accelerate: bool = True):
        self.dsl = dsl
        self.settings = settings
        self.seed = seed
        self.device = device
        self.exclude = exclude
        self.progress = progress
        self.threads = threads
        self.accelerate = accelerate

    def fit(self, x_train: torch.Tensor, y_train, x_val: torch.Tensor, y_val) -> "ProgramSearch":
        """Search on features ``x_train [N, T, F]`` (standardised) with labels ``y_train``;
        ``x_val`` / ``y_val`` score the candidates."""
        self._clear_fitted()
        with limit_threads(self.threads), native_kernels(self.accelerate):
            return self._fit(x_train, y_train, x_val, y_val)

    def _fit(self, x_train, y_train, x_val, y_val) -> "ProgramSearch":
        dsl = load_dsl(self.dsl)
        settings = self.settings or SearchSettings()
        if isinstance(settings, dict):
            settings = from_dict(SearchSettings, settings, source=f"{type(self).__name__}(settings=...)")
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
        self._set_fitted(
            seconds_=time.perf_counter() - t0, dsl_=dsl, settings_=settings, classes_=classes,
            program_=best.result.program, val_f1_=best.result.f1, val_score_=best.result.score,
            structural_cost_=best.node.cost, history_=list(evaluator.history), n_candidates_=evaluator.n_trained,
        )
        return self

    def decision_function(self, x: torch.Tensor) -> np.ndarray:
        """Program outputs (logits): ``[N]`` for binary labels, ``[N, n_classes]`` otherwise."""
        self._check_fitted()
        out = evaluate_program(self.program_, self.dsl_, x.float()).cpu().numpy()
        return out[:, 0] if out.shape[-1] == 1 else out

    def predict(self, x: torch.Tensor) -> np.ndarray:
        out = self.decision_function(x)
        idx = (out > 0).astype(int) if out.ndim == 1 else out.argmax(-1)
        return self.classes_[idx]

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
