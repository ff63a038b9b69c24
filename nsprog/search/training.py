"""Training candidate programs: the neural-relaxation heuristic of NEAR.

Each candidate (a partial program whose holes are neural modules, or a complete program)
is trained on the supervision for a few epochs and scored by ``1 - weighted F1`` on the
validation split. Siblings are trained *together*: candidates of one shape are stacked
into a single module and all shapes share one loop (same batches, one summed loss, one
backward, one Adam step). Adam is elementwise and the summed loss separates, so each
candidate follows exactly the trajectory it would follow alone; stacking only removes
per-candidate overhead. The leaves of all shapes (affine functions, MLP holes, GRU holes)
share banks (:class:`~nsprog.dsl.semantics.CandidateBatch`), so each kind of leaf is
computed for every candidate in one call per batch. A candidate stops (its record frozen at its best epoch) after
``patience`` epochs without improvement.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nsprog.dsl.ast import Node, is_complete
from nsprog.dsl.definition import DSL
from nsprog.dsl.semantics import CandidateBatch, shape_key
from nsprog.executors import InlineExecutor
from nsprog.optim import make_adam
from nsprog.progress import Progress
from nsprog.settings import Settings, param

__all__ = [
    "TrainSettings",
    "Supervision",
    "CandidateResult",
    "weighted_f1",
    "train_candidates",
    "CandidateEvaluator",
    "make_adam",
]


@dataclass
class TrainSettings(Settings):
    """Candidate-training hyperparameters (NEAR's neural / symbolic epochs, lr, batch)."""

    neural_epochs: int = param(10, ge=1)
    symbolic_epochs: int = param(10, ge=1)
    lr: float = param(1e-3, gt=0)
    batch_size: int = param(32, ge=1)
    patience: int = param(3, ge=1)
    max_units: int = param(16, ge=1)
    min_units: int = param(8, ge=1)
    eval_batch_size: int = param(8192, ge=1)


@dataclass
class Supervision:
    """Features ``[N, T, F]`` with integer class targets for training and validation."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    name: str = "labels"

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if x.dim() not in (2, 3):
                raise ValueError(f"x_{split} has shape {tuple(x.shape)}; expected (N, T, F) or (N, F)")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y_{split} has shape {tuple(y.shape)}; expected ({x.shape[0]},)")
            if not torch.isfinite(x).all():
                raise ValueError(f"x_{split} contains NaN or inf")
        if self.n_classes < 2:
            raise ValueError(f"supervision needs at least 2 classes; got {self.n_classes}")
        self.y_train = self.y_train.long()
        self.y_val = self.y_val.long()

    @property
    def out_dim(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    def to(self, device) -> "Supervision":
        return Supervision(
            self.x_train.to(device), self.y_train.to(device), self.x_val.to(device), self.y_val.to(device),
            self.n_classes, self.name,
        )


@dataclass
class CandidateResult:
    program: Node  # with its trained parameters (best validation epoch)
    score: float  # 1 - weighted F1 on validation
    f1: float
    accuracy: float
    epochs: int  # epochs trained before stopping
    best_epoch: int
    seconds: float = 0.0


def weighted_f1(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """F1 per class weighted by the *true* class support (sklearn's ``average='weighted'``),
    for K prediction rows at once: ``y_pred[K, N] -> [K]``."""
    y_true = y_true.long()
    y_pred = y_pred.long()
    true_1h = F.one_hot(y_true, n_classes).to(torch.float64)  # [N, C]
    pred_1h = F.one_hot(y_pred, n_classes).to(torch.float64)  # [K, N, C]
    tp = (pred_1h * true_1h).sum(1)  # [K, C]
    pred_count = pred_1h.sum(1)
    support = true_1h.sum(0)  # [C]
    denom = pred_count + support
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1e-12), torch.zeros_like(tp))
    return (f1 * support).sum(-1) / support.sum()


def _predict(logits: torch.Tensor) -> torch.Tensor:
    return (logits[..., 0] > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over candidates of the mean loss over the batch; logits ``[K, B, d]``."""
    k = logits.shape[0]
    if logits.shape[-1] == 1:
        target = y.to(logits.dtype).expand(k, -1)
        return F.binary_cross_entropy_with_logits(logits[..., 0], target, reduction="mean") * k
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(k), reduction="mean") * k


def _check_outputs(programs: Sequence[Node], sup: Supervision) -> None:
    for p in programs:
        if p.sig.out.dim != sup.out_dim or p.sig.kinds.endswith("list"):
            raise ValueError(
                f"program {p.key()} outputs {p.sig.out}; supervision with {sup.n_classes} classes needs atom({sup.out_dim})"
            )


def train_candidates(
    programs: Sequence[Node],
    sup: Supervision,
    dsl: DSL,
    settings: TrainSettings,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[CandidateResult]:
    """Train all ``programs`` in one fused loop and return their best-epoch results."""
    t0 = time.perf_counter()
    _check_outputs(programs, sup)
    device = torch.device(device)
    sup = sup.to(device)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(programs):
        groups[shape_key(p)].append(i)
    group_list = list(groups.values())
    batch = CandidateBatch([[programs[i] for i in idxs] for idxs in group_list], dsl, settings.max_units,
                           settings.min_units, seed).to(device)
    epochs = [
        settings.symbolic_epochs if is_complete(programs[idxs[0]]) else settings.neural_epochs for idxs in group_list
    ]
    opt = make_adam(batch.parameters(), settings.lr)
    gen = torch.Generator().manual_seed(int(seed))
    n = sup.x_train.shape[0]
    P = len(programs)
    best = np.full(P, np.inf)
    best_f1 = np.zeros(P)
    best_acc = np.zeros(P)
    best_epoch = np.zeros(P, dtype=int)
    ran = np.zeros(P, dtype=int)
    since = np.zeros(P, dtype=int)
    stopped = np.zeros(P, dtype=bool)
    best_prog: list[Node | None] = [None] * P
    n_epochs = max(epochs) if epochs else 0
    bar = Progress(range(n_epochs), f"training {P} candidate(s)", enabled=progress, log_lines=False)
    for epoch in bar:
        active = [g for g, idxs in enumerate(group_list) if epoch < epochs[g] and not stopped[idxs].all()]
        if not active:
            break
        batch.train()
        perm = torch.randperm(n, generator=gen).to(device)
        x_ep, y_ep = sup.x_train[perm], sup.y_train[perm]  # one gather per epoch; batches are views
        for lo in range(0, n, settings.batch_size):
            xb, yb = x_ep[lo : lo + settings.batch_size], y_ep[lo : lo + settings.batch_size]
            outs = batch(xb, active)
            loss = _loss(outs[0] if len(outs) == 1 else torch.cat(outs), yb)  # one loss call for every shape
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            batch.eval()
            chunks = [batch(sup.x_val[lo : lo + settings.eval_batch_size], active)
                      for lo in range(0, sup.x_val.shape[0], settings.eval_batch_size)]
            for a, g in enumerate(active):
                m = batch.groups[g]
                logits = torch.cat([c[a] for c in chunks], dim=1)
                if not torch.isfinite(logits).all():
                    raise FloatingPointError(
                        f"candidate outputs became NaN/inf at epoch {epoch + 1} (shape {shape_key(programs[group_list[g][0]])}); "
                        "lower the learning rate"
                    )
                pred = _predict(logits)
                f1 = weighted_f1(sup.y_val, pred, sup.n_classes).cpu().numpy()
                acc = (pred == sup.y_val).double().mean(1).cpu().numpy()
                for k, i in enumerate(group_list[g]):
                    if stopped[i]:
                        continue
                    ran[i] = epoch + 1
                    score = 1.0 - f1[k]
                    if score < best[i] - 1e-12:
                        best[i], best_f1[i], best_acc[i], best_epoch[i] = score, f1[k], acc[k], epoch + 1
                        best_prog[i] = m.export(k)
                        since[i] = 0
                    else:
                        since[i] += 1
                        if since[i] >= settings.patience:
                            stopped[i] = True
                    if epoch + 1 >= epochs[g]:
                        stopped[i] = True
        bar.report(epoch, {"best": float(best.min())})
    bar.close()
    seconds = (time.perf_counter() - t0) / max(P, 1)
    return [
        CandidateResult(best_prog[i] or programs[i], float(best[i]), float(best_f1[i]), float(best_acc[i]),
                        int(ran[i]), int(best_epoch[i]), seconds)
        for i in range(P)
    ]


@dataclass
class CandidateEvaluator:
    """Trains and scores candidates for one supervision, caching scores by structural hash.

    ``fused=True`` trains all uncached candidates of a call together (split into one job per
    worker when the executor has several); ``fused=False`` trains them one at a time (for
    comparison). Jobs go through ``executor.submit(fn, ...).result()``.
    """

    sup: Supervision
    dsl: DSL
    settings: TrainSettings = field(default_factory=TrainSettings)
    seed: int = 0
    device: str = "cpu"
    executor: object = field(default_factory=InlineExecutor)
    fused: bool = True
    progress: bool = False
    cache: dict = field(default_factory=dict)
    n_trained: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)

    def evaluate(self, programs: Sequence[Node]) -> list[CandidateResult]:
        keys = [p.key() for p in programs]
        todo, seen = [], set()
        for p, k in zip(programs, keys):
            if k not in self.cache and k not in seen:
                todo.append(p)
                seen.add(k)
        if todo:
            t0 = time.perf_counter()
            if self.fused:
                jobs = self._partition(todo, max(1, int(getattr(self.executor, "workers", 1))))
            else:
                jobs = [[p] for p in todo]
            futures = [
                self.executor.submit(train_candidates, job, self.sup, self.dsl, self.settings, self.seed, self.device,
                                     self.progress and len(jobs) == 1)
                for job in jobs
            ]
            for job, fut in zip(jobs, futures):
                for p, r in zip(job, fut.result()):
                    self.cache[p.key()] = r
            self.n_trained += len(todo)
            self.seconds += time.perf_counter() - t0
        return [self.cache[k] for k in keys]

    @staticmethod
    def _partition(programs: list[Node], n_jobs: int) -> list[list[Node]]:
        """Keep shapes together (they stack) and spread whole shapes over the jobs."""
        by_shape: dict[str, list[Node]] = defaultdict(list)
        for p in programs:
            by_shape[shape_key(p)].append(p)
        jobs: list[list[Node]] = [[] for _ in range(min(n_jobs, len(by_shape)))]
        for group in sorted(by_shape.values(), key=len, reverse=True):
            min(jobs, key=len).extend(group)
        return [j for j in jobs if j]
