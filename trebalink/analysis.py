"""A summary of a label matrix, like Snorkel's ``LFAnalysis`` (without depending on it).

Per task: coverage (share of windows it labels), class balance, overlaps (share of windows
that it and at least one other task label), conflicts (share of windows where another task
*of the same label space* gives a different class), and, where the data has label columns,
agreement with them: accuracy when the task's ``label_space`` names the column (the task
votes on those very classes), otherwise purity (each task class mapped to its majority label)
and NMI. Pairwise matrices: overlap, conflict (same label space only; NaN elsewhere) and NMI
between tasks (redundancy). Continuous tasks report value statistics instead of classes.

Conflicts only mean something between tasks that vote on the same classes. Expert and
learned tasks usually each describe their own quantity (speed, an angle, a program's bit),
so their conflicts are reported as not applicable and the notes say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.metrics import nmi as _nmi, purity as _purity
from trebalink.labelling import bind_tasks
from trebalink.tasks import ABSTAIN, Task, TaskSet

__all__ = ["TaskAnalysis", "analyze", "analyze_windows", "gold_columns"]


@dataclass
class TaskAnalysis:
    names: list[str]
    n_windows: int
    per_task: list[dict]
    overlap: np.ndarray
    conflict: np.ndarray
    task_nmi: np.ndarray
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def mat(m):
            return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in m]

        return {"n_windows": self.n_windows, "tasks": self.per_task, "names": self.names,
                "pairwise_overlap": mat(self.overlap), "pairwise_conflict": mat(self.conflict),
                "pairwise_nmi": mat(self.task_nmi), "notes": self.notes}

    def to_text(self) -> str:
        lines = [f"{len(self.names)} task(s) on {self.n_windows} windows"]
        width = max([len(n) for n in self.names] + [4])
        for t in self.per_task:
            if t["kind"] == "continuous":
                s = t["values"]
                body = f"values mean {s['mean']:.4g} std {s['std']:.4g} [{s['min']:.4g}, {s['max']:.4g}]"
            else:
                bal = "/".join(f"{v:.2f}" for v in t["class_balance"])
                conf = "n/a" if t["conflicts"] is None else f"{t['conflicts']:.3f}"
                body = f"classes {bal}  overlaps {t['overlaps']:.3f}  conflicts {conf}"
            extra = []
            for col, acc in (t.get("accuracy") or {}).items():
                extra.append(f"accuracy vs {col} {acc:.3f}")
            for col, a in (t.get("association") or {}).items():
                extra.append(f"{col}: purity {a['purity']:.3f} NMI {a['nmi']:.3f}")
            lines.append(f"  {t['task']:<{width}}  coverage {t['coverage']:.3f}  {body}"
                         + (f"  ({'; '.join(extra)})" if extra else ""))
        if len(self.names) > 1:
            lines.append("  pairwise NMI between tasks (redundancy):")
            for i, n in enumerate(self.names):
                row = " ".join("  -  " if i == j or not np.isfinite(v) else f"{v:.2f} " for j, v in enumerate(self.task_nmi[i]))
                lines.append(f"    {n:<{width}} {row}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


#: label columns with more distinct values than this are ids (possession, recording), not classes
MAX_CLASSES = 50


def gold_columns(traj: Trajectories) -> dict[str, np.ndarray]:
    """The label columns of windows: ``label`` (when present) and every factor with at most
    :data:`MAX_CLASSES` distinct values."""
    out = {}
    if traj.labels is not None:
        out["label"] = traj.labels
    out.update({k: v for k, v in traj.factors.items() if len(np.unique(v)) <= MAX_CLASSES})
    return out


def _space(t: Task) -> str:
    return t.label_space if t.label_space is not None else f"\0{t.name}"


def analyze(tasks: TaskSet | Sequence[Task], values: np.ndarray, labels: np.ndarray,
            gold: Mapping[str, np.ndarray] | None = None) -> TaskAnalysis:
    """Summarise values ``[N, K]`` (NaN = abstain) and class labels ``[N, K]`` (``ABSTAIN`` =
    -1) of ``tasks``; ``gold`` maps label-column names to per-window labels (-1 = unlabelled)."""
    tasks = list(tasks)
    values, labels = np.asarray(values, np.float64), np.asarray(labels)
    n, k = labels.shape if labels.ndim == 2 else (len(labels), 0)
    if values.shape != labels.shape or k != len(tasks):
        raise ValueError(f"values {values.shape} and labels {labels.shape} must both be (N, {len(tasks)})")
    gold = {c: np.asarray(v) for c, v in (gold or {}).items()}
    discrete = np.array([t.discrete for t in tasks], bool)
    covered = np.where(discrete[None, :], labels != ABSTAIN, np.isfinite(values))
    spaces = [_space(t) for t in tasks]
    shared = {s for s in spaces if spaces.count(s) > 1}
    overlap = np.full((k, k), np.nan)
    conflict = np.full((k, k), np.nan)
    task_nmi = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            both = covered[:, i] & covered[:, j]
            overlap[i, j] = both.mean() if n else np.nan
            if discrete[i] and discrete[j] and spaces[i] == spaces[j]:
                conflict[i, j] = (both & (labels[:, i] != labels[:, j])).mean() if n else np.nan
            if j > i and discrete[i] and discrete[j] and both.sum() > 1:
                task_nmi[i, j] = task_nmi[j, i] = _nmi(labels[both, i], labels[both, j])
    per_task = []
    for i, t in enumerate(tasks):
        mine = covered[:, i]
        others = np.delete(covered, i, axis=1)
        row: dict = {"task": t.name, "kind": t.kind, "label_space": t.label_space,
                     "coverage": float(mine.mean()) if n else 0.0,
                     "overlaps": float((mine & others.any(1)).mean()) if n and others.size else 0.0}
        if not t.discrete:
            v = values[mine, i]
            row["values"] = {"mean": float(v.mean()) if v.size else float("nan"),
                             "std": float(v.std()) if v.size else float("nan"),
                             "min": float(v.min()) if v.size else float("nan"),
                             "max": float(v.max()) if v.size else float("nan")}
            per_task.append(row)
            continue
        cls = labels[mine, i]
        nc = t.n_classes or (int(cls.max()) + 1 if cls.size else 0)
        row["n_classes"] = nc
        row["class_balance"] = (np.bincount(cls, minlength=nc) / max(cls.size, 1)).round(4).tolist()
        if spaces[i] in shared:
            same = [j for j in range(k) if j != i and spaces[j] == spaces[i]]
            disagree = (covered[:, same] & (labels[:, same] != labels[:, i : i + 1])).any(1) & mine
            row["conflicts"] = float(disagree.mean()) if n else 0.0
        else:
            row["conflicts"] = None
        acc, assoc = {}, {}
        for col, g in gold.items():
            ok = mine & (g >= 0)
            if ok.sum() == 0:
                continue
            if t.label_space == col:
                acc[col] = float((labels[ok, i] == g[ok]).mean())
            else:
                assoc[col] = {"purity": float(_purity(g[ok], labels[ok, i])), "nmi": float(_nmi(g[ok], labels[ok, i]))}
        if acc:
            row["accuracy"] = acc
        if assoc:
            row["association"] = assoc
        per_task.append(row)
    notes = []
    if k > 1 and not shared:
        notes.append("conflicts are counted only between tasks that share a label space (field label_space); no two "
                     "tasks here share one, so every task describes its own quantity and conflicts are n/a")
    elif shared:
        notes.append(f"conflicts are counted within label spaces {sorted(s for s in shared if not s.startswith(chr(0)))}")
    if gold:
        notes.append("accuracy: tasks whose label_space names a label column; purity / NMI: agreement of the task's "
                     "classes with the column's labels (each class mapped to its majority label)")
    return TaskAnalysis([t.name for t in tasks], int(n), per_task, overlap, conflict, task_nmi, notes)


def analyze_windows(tasks: TaskSet, traj: Trajectories, batch_size: int = 65536) -> TaskAnalysis:
    """Bind ``tasks`` to ``traj``, label every window and summarise, with its label columns as gold."""
    values, labels = bind_tasks(tasks, traj).label_windows(traj, batch_size)
    return analyze(tasks, values, labels, gold_columns(traj))
