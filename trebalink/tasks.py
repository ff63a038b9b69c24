"""Programs as labelling functions ("task programming"), shaped like Snorkel's API.

A :class:`Task` has a name, a vectorised ``values(windows)`` (one number per window),
thresholds that discretise the values (class = number of thresholds below the value) and
``ABSTAIN = -1`` for windows it does not label. A learned nsprog program and an
expert-written function become the same object. :func:`label_matrix` applies tasks to
windows; :func:`summarize` reports coverage, class balance, overlaps and conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from nsprog.data.trajectories import Trajectories

__all__ = ["ABSTAIN", "Task", "tasks_from_programs", "label_matrix", "summarize", "quantile_thresholds"]

ABSTAIN = -1


@dataclass(frozen=True)
class Task:
    name: str
    values: Callable[[Trajectories], np.ndarray]
    thresholds: tuple[float, ...] = (0.0,)
    description: str = ""

    def __post_init__(self) -> None:
        t = tuple(float(v) for v in self.thresholds)
        if list(t) != sorted(t):
            raise ValueError(f"task {self.name!r}: thresholds must be increasing; got {t}")
        object.__setattr__(self, "thresholds", t)

    @property
    def n_classes(self) -> int:
        return len(self.thresholds) + 1

    def label(self, traj: Trajectories) -> np.ndarray:
        v = np.asarray(self.values(traj), dtype=float)
        if v.shape != (len(traj),):
            raise ValueError(f"task {self.name!r} returned shape {v.shape}; expected ({len(traj)},)")
        out = (v[:, None] > np.asarray(self.thresholds)[None, :]).sum(1).astype(np.int64)
        out[~np.isfinite(v)] = ABSTAIN
        return out


def tasks_from_programs(pset) -> list[Task]:
    """One binary task per program of an :class:`nsprog.programs.ProgramSet` (value = logit)."""
    return [
        Task(name, (lambda traj, n=name: pset.decision_function(traj)[n]), (0.0,), pset.describe(name)["text"])
        for name in pset.programs
    ]


def quantile_thresholds(values: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """Thresholds that split training values into ``n_classes`` equally populated classes."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}")
    return tuple(float(q) for q in np.quantile(np.asarray(values, float), np.arange(1, n_classes) / n_classes))


def label_matrix(tasks: Sequence[Task], traj: Trajectories) -> np.ndarray:
    """``[N, n_tasks]`` class labels, ``ABSTAIN`` where a task does not label a window."""
    return np.stack([t.label(traj) for t in tasks], axis=1) if tasks else np.zeros((len(traj), 0), np.int64)


def summarize(L: np.ndarray, names: Sequence[str]) -> list[dict]:
    """Per task: coverage (share labelled), class balance, overlaps (share also labelled by
    another task) and conflicts (share labelled differently by another task; meaningful when
    tasks share a label space, as binary program tasks do)."""
    L = np.asarray(L)
    labelled = L != ABSTAIN
    out = []
    for j, name in enumerate(names):
        mine = labelled[:, j]
        others = np.delete(labelled, j, axis=1)
        other_l = np.delete(L, j, axis=1)
        overlap = mine & others.any(1) if others.size else np.zeros_like(mine)
        conflict = (mine[:, None] & others & (other_l != L[:, j : j + 1])).any(1) if others.size else np.zeros_like(mine)
        vals = L[mine, j]
        k = int(vals.max()) + 1 if vals.size else 0
        out.append({
            "task": name,
            "coverage": float(mine.mean()),
            "class_balance": (np.bincount(vals, minlength=k) / max(vals.size, 1)).round(4).tolist(),
            "overlaps": float(overlap.mean()),
            "conflicts": float(conflict.mean()),
        })
    return out
