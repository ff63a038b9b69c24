"""Tasks: programs used as labelling functions ("task programming"), shaped like Snorkel's API.

A :class:`Task` is a name, a vectorised function of the windows (one value per window), a
kind (``binary``, ``categorical`` with k classes, or ``continuous``) and a discretisation:
explicit ``thresholds`` or ``quantiles`` (k classes from the training split's quantiles,
resolved by :func:`trebalink.labelling.fit_tasks` and recorded). The class of a value is the number of
thresholds strictly below it (a value equal to a threshold falls in the lower class); a
window whose value is not finite (missing data) gets ``ABSTAIN = -1``.

A task's function is named, not pickled: ``fn`` picks an entry of the function table
(:mod:`trebalink.programs`: the expert functions of each domain, ``feature`` for any nsprog
domain feature, ``program`` for a learned nsprog program, ``random`` for the random-task
control) and ``args`` are its arguments, so a :class:`TaskSet` saves to and loads from YAML
with its provenance (run folder and program text for learned tasks). A hand-written Python
function can be wrapped with :meth:`Task.from_function` (such a set cannot be saved).

:func:`trebalink.labelling.bind_tasks` resolves the functions against a data layout once
(keypoint indices and the like; an unknown keypoint or feature is an error naming the task
and field) and returns a :class:`BoundTasks` that labels torch tensors of raw windows
``[B, T+1, D]`` on any device, which is how training relabels augmented windows batch by
batch. This module is the data model only; it knows no function table, so the domain
modules of :mod:`trebalink.programs` can build task sets without a circular import.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch
import yaml

from nsprog._version import __version__
from nsprog.data.trajectories import Trajectories
from nsprog.utils import atomic_write

__all__ = [
    "ABSTAIN", "KINDS", "FORMAT", "TaskError", "Task", "TaskSet", "BoundTasks", "quantile_thresholds",
    "discretize",
]

log = logging.getLogger("nsprog")

ABSTAIN = -1
KINDS = ("binary", "categorical", "continuous")
FORMAT = "trebalink-tasks"
VERSION = 1
Kind = Literal["binary", "categorical", "continuous"]
ValuesFn = Callable[[torch.Tensor], torch.Tensor]
_TASK_KEYS = ("name", "fn", "args", "kind", "thresholds", "quantiles", "label_space", "description", "provenance")


class TaskError(ValueError):
    """A task or task set is invalid; the message names the file, the task and the field."""


def task_location(source: str | None, index: int | None, name: str | None, fld: str) -> str:
    parts = []
    if source:
        parts.append(str(source))
    if name is not None:
        parts.append(f"task {name!r}" + (f" (tasks[{index}].{fld})" if index is not None else f" (field {fld})"))
    elif fld:
        parts.append(f"field {fld}")
    return ": ".join(parts)


@dataclass(frozen=True)
class Task:
    """One labelling task. See the module docstring for the rules.

    Parameters
    ----------
    name : str
        Unique within its set.
    fn : str or callable
        A function-table name (see :mod:`trebalink.programs`) or, via :meth:`from_function`,
        a Python callable ``states [B, T+1, D] -> values [B]``.
    args : mapping
        The function's arguments (checked when the set is bound).
    kind : {"binary", "categorical", "continuous"}
    thresholds : sequence of float, optional
        Strictly increasing class boundaries (binary: exactly one).
    quantiles : int, optional
        Number of classes from training-split quantiles (instead of ``thresholds``).
    label_space : str, optional
        Tasks with the same label space vote on the same classes (only those can conflict);
        the name of a label column of the data (``label`` or a factor) makes the analysis
        report the task's accuracy against it.
    """

    name: str
    fn: str | Callable = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    kind: Kind = "categorical"
    thresholds: tuple[float, ...] | None = None
    quantiles: int | None = None
    label_space: str | None = None
    description: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str | None = None, index: int | None = None) -> None:
        """Check every field; the error names ``source`` (a file), the task and the field."""
        def bad(fld: str, msg: str):
            raise TaskError(f"{task_location(source, index, self.name if isinstance(self.name, str) else None, fld)}: {msg}")

        if not isinstance(self.name, str) or not self.name:
            raise TaskError(f"{task_location(source, None, None, f'tasks[{index}].name' if index is not None else 'name')}: "
                            f"expected a non-empty task name; got {self.name!r}")
        if not (callable(self.fn) or (isinstance(self.fn, str) and self.fn)):
            bad("fn", f"expected a function name (see trebalink.programs.FUNCTIONS); got {self.fn!r}")
        if not isinstance(self.args, Mapping):
            bad("args", f"expected a mapping of the function's arguments; got {self.args!r}")
        object.__setattr__(self, "args", dict(self.args))
        if self.kind not in KINDS:
            bad("kind", f"expected one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.label_space is not None and not isinstance(self.label_space, str):
            bad("label_space", f"expected a string; got {self.label_space!r}")
        if self.thresholds is not None:
            if isinstance(self.thresholds, (str, bytes)) or not isinstance(self.thresholds, Sequence):
                bad("thresholds", f"expected a list of numbers; got {self.thresholds!r}")
            try:
                t = tuple(float(v) for v in self.thresholds)
            except (TypeError, ValueError):
                bad("thresholds", f"expected a list of numbers; got {self.thresholds!r}")
            if any(not math.isfinite(v) for v in t):
                bad("thresholds", f"expected finite numbers; got {list(t)}")
            if any(b <= a for a, b in zip(t, t[1:])):
                bad("thresholds", f"must be strictly increasing (sorted, no repeats); got {list(t)}")
            object.__setattr__(self, "thresholds", t)
        if self.quantiles is not None and (isinstance(self.quantiles, bool) or not isinstance(self.quantiles, int)
                                           or self.quantiles < 2):
            bad("quantiles", f"expected a number of classes >= 2; got {self.quantiles!r}")
        if self.kind == "continuous":
            if self.thresholds is not None or self.quantiles is not None:
                bad("kind", "a continuous task has no thresholds or quantiles; use kind: categorical to discretise it")
            return
        if self.thresholds is None and self.quantiles is None:
            bad("thresholds", f"a {self.kind} task needs thresholds (a sorted list) or quantiles (a number of classes)")
        if self.thresholds is not None and self.quantiles is not None and len(self.thresholds) + 1 > self.quantiles:
            bad("thresholds", f"{len(self.thresholds)} thresholds give more classes than quantiles: {self.quantiles}")
        if self.kind == "binary":
            if self.quantiles is not None and self.quantiles != 2:
                bad("quantiles", f"a binary task has 2 classes; got quantiles: {self.quantiles}")
            if self.thresholds is not None and len(self.thresholds) != 1 and self.quantiles is None:
                bad("thresholds", f"a binary task has exactly one threshold; got {list(self.thresholds)}")
        elif self.thresholds is not None and len(self.thresholds) == 0 and self.quantiles is None:
            bad("thresholds", "a categorical task needs at least one threshold")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_function(cls, name: str, fn: ValuesFn, thresholds: Sequence[float] | None = (0.0,),
                      quantiles: int | None = None, kind: Kind | None = None, description: str = "") -> "Task":
        """Wrap a vectorised Python function ``states [B, T+1, D] (torch) -> [B]``; it cannot be saved."""
        if not callable(fn):
            raise TaskError(f"task {name!r}: fn must be callable; got {type(fn).__name__}")
        if kind is None:
            n = quantiles if thresholds is None else len(tuple(thresholds)) + 1
            kind = "binary" if n == 2 else "categorical"
        return cls(name, fn, {}, kind, None if thresholds is None else tuple(thresholds), quantiles,
                   description=description)

    # ------------------------------------------------------------------ classes
    @property
    def resolved(self) -> bool:
        """True when the task needs nothing from the training data (thresholds known or continuous)."""
        return self.kind == "continuous" or self.thresholds is not None

    @property
    def discrete(self) -> bool:
        return self.kind != "continuous"

    @property
    def n_classes(self) -> int | None:
        """Number of classes (None for continuous tasks or unresolved quantiles)."""
        if self.kind == "continuous":
            return None
        if self.thresholds is not None:
            return len(self.thresholds) + 1
        return self.quantiles

    def classes(self, values: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Class per value (``ABSTAIN`` where not finite); numpy in, numpy out."""
        if not self.resolved or self.kind == "continuous":
            raise TaskError(f"task {self.name!r} has no thresholds yet (quantiles: {self.quantiles}); fit the task "
                            "set on training windows first (trebalink.labelling.fit_tasks)")
        return discretize(values, self.thresholds)

    def to_dict(self) -> dict:
        if callable(self.fn):
            raise TaskError(f"task {self.name!r} wraps a Python function; only tasks with a named fn can be saved")
        d: dict[str, Any] = {"name": self.name, "fn": self.fn, "args": _plain(dict(self.args)), "kind": self.kind}
        if self.thresholds is not None:
            d["thresholds"] = [float(t) for t in self.thresholds]
        if self.quantiles is not None:
            d["quantiles"] = int(self.quantiles)
        if self.label_space is not None:
            d["label_space"] = self.label_space
        if self.description:
            d["description"] = self.description
        if self.provenance:
            d["provenance"] = _plain(dict(self.provenance))
        return d


def discretize(values, thresholds: Sequence[float]):
    """Class = number of thresholds strictly below the value; ``ABSTAIN`` where not finite."""
    if isinstance(values, torch.Tensor):
        thr = torch.as_tensor(list(thresholds), dtype=values.dtype, device=values.device)
        out = (values[..., None] > thr).sum(-1)
        return torch.where(torch.isfinite(values), out, torch.full_like(out, ABSTAIN))
    v = np.asarray(values, dtype=np.float64)
    out = (v[..., None] > np.asarray(thresholds, np.float64)).sum(-1).astype(np.int64)
    out[~np.isfinite(v)] = ABSTAIN
    return out


def quantile_thresholds(values, n_classes: int) -> tuple[float, ...]:
    """Thresholds that split the finite ``values`` into ``n_classes`` equally populated classes
    (ties merged, so fewer classes may result when values repeat)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}")
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ()
    q = np.quantile(v, np.arange(1, n_classes) / n_classes)
    return tuple(float(x) for x in np.unique(q))


def _plain(obj: Any) -> Any:
    """YAML-safe plain data."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


class BoundTasks:
    """A task set resolved against one data layout: labels torch windows in one call each.

    ``values(states)`` -> ``[B, K]`` float values (NaN = abstain; continuous tasks too);
    ``labels(states)`` -> ``[B, K]`` int64 classes (``ABSTAIN`` = -1; continuous tasks get
    ``ABSTAIN`` everywhere since they have no classes).
    """

    def __init__(self, tasks: Sequence[Task], fns: Sequence[ValuesFn]):
        self.tasks = tuple(tasks)
        self.fns = tuple(fns)
        self._thr = [t.thresholds if (t.discrete and t.thresholds is not None) else None for t in self.tasks]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    @torch.no_grad()
    def values(self, states: torch.Tensor) -> torch.Tensor:
        if not self.tasks:
            return states.new_zeros((states.shape[0], 0))
        with torch.autocast(states.device.type, enabled=False):  # thresholds need full precision
            return self._values(states.float())

    def _values(self, states: torch.Tensor) -> torch.Tensor:
        cols = []
        for task, fn in zip(self.tasks, self.fns):
            v = fn(states)
            if tuple(v.shape) != (states.shape[0],):
                raise TaskError(f"task {task.name!r} returned shape {tuple(v.shape)}; expected ({states.shape[0]},), "
                                "one value per window")
            cols.append(v.to(torch.float32))
        return torch.stack(cols, dim=1)

    def classes(self, values: torch.Tensor) -> torch.Tensor:
        out = torch.full(values.shape, ABSTAIN, dtype=torch.int64, device=values.device)
        for j, thr in enumerate(self._thr):
            if thr is not None:
                out[:, j] = discretize(values[:, j], thr)
        return out

    def labels(self, states: torch.Tensor) -> torch.Tensor:
        return self.classes(self.values(states))

    def label_windows(self, traj: Trajectories, batch_size: int = 65536,
                      device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """``(values [N, K] float32, labels [N, K] int64)`` for all windows of ``traj``."""
        vals = []
        states = torch.from_numpy(traj.states)
        for lo in range(0, len(traj), batch_size):
            vals.append(self.values(states[lo : lo + batch_size].to(device)).cpu())
        v = torch.cat(vals) if vals else torch.zeros((0, len(self.tasks)))
        return v.numpy(), self.classes(v).numpy()


@dataclass(frozen=True)
class TaskSet:
    """An ordered set of tasks over one kind of data, with what binding them needs.

    ``domain`` / ``domain_params`` name the nsprog feature domain whose layout the expert
    functions read (``mouse``, ``openfield``, ``team``, ``synthetic``; ``None`` for sets that
    read the raw window only). ``programs`` holds the learned programs of ``program`` tasks
    (an nsprog ``programs.json`` payload), so a saved set needs nothing else.
    """

    tasks: tuple[Task, ...]
    name: str = ""
    domain: str | None = None
    domain_params: Mapping[str, Any] = field(default_factory=dict)
    programs: Mapping[str, Any] | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file it was loaded from (for messages; not saved)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TaskError(f"{self.source + ': ' if self.source else ''}task names must be unique; repeated: "
                            f"{', '.join(map(repr, dup))}")

    # ------------------------------------------------------------------ basics
    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    @property
    def resolved(self) -> bool:
        return all(t.resolved for t in self.tasks)

    @property
    def n_classes(self) -> list[int | None]:
        return [t.n_classes for t in self.tasks]

    def select(self, names: Sequence[str]) -> "TaskSet":
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise TaskError(f"no task(s) {unknown} in this set; tasks: {', '.join(self.names)}")
        return replace(self, tasks=tuple(t for t in self.tasks if t.name in set(names)))

    def _index(self, task: Task) -> int:
        return self.names.index(task.name)

    # ------------------------------------------------------------------ YAML
    def to_dict(self) -> dict:
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name, "domain": self.domain,
                             "domain_params": _plain(dict(self.domain_params)),
                             "tasks": [t.to_dict() for t in self.tasks]}
        prov = {"created": _dt.datetime.now().isoformat(timespec="seconds"), "nsprog_version": __version__}
        prov.update(_plain(dict(self.provenance)))
        d["provenance"] = prov
        if self.programs is not None:
            d["programs"] = _plain(dict(self.programs))
        return d

    def save(self, path: str | Path) -> Path:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=110)
        return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | None = None) -> "TaskSet":
        where = f"{source}: " if source else ""
        if not isinstance(d, Mapping):
            raise TaskError(f"{where}expected a mapping with 'format: {FORMAT}' and 'tasks'; got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise TaskError(f"{where}field 'format' is {d.get('format')!r}; expected {FORMAT!r} (a trebalink task set)")
        version = d.get("version", VERSION)
        if not isinstance(version, int) or version > VERSION:
            raise TaskError(f"{where}field 'version' is {version!r}; this trebalink reads task sets up to version "
                            f"{VERSION}")
        allowed = {"format", "version", "name", "domain", "domain_params", "tasks", "provenance", "programs"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise TaskError(f"{where}unknown field(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
        raw = d.get("tasks")
        if not isinstance(raw, list):
            raise TaskError(f"{where}field 'tasks' must be a list of tasks; got {raw!r}")
        tasks = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, Mapping):
                raise TaskError(f"{where}tasks[{i}]: expected a mapping with name, fn, args, kind, thresholds; "
                                f"got {entry!r}")
            extra = sorted(set(entry) - set(_TASK_KEYS))
            name = entry.get("name")
            if extra:
                raise TaskError(f"{task_location(source, i, str(name), extra[0])}: unknown field(s) {extra}; allowed: "
                                f"{', '.join(_TASK_KEYS)}")
            kwargs = {k: entry[k] for k in _TASK_KEYS if k in entry and entry[k] is not None}
            kwargs.setdefault("name", "")
            t = object.__new__(Task)
            for key, default in (("fn", ""), ("args", {}), ("kind", "categorical"), ("thresholds", None),
                                 ("quantiles", None), ("label_space", None), ("description", ""), ("provenance", {})):
                object.__setattr__(t, key, kwargs.get(key, default))
            object.__setattr__(t, "name", kwargs["name"])
            t.validate(source, i)  # the same checks as Task(...), with the file and index in the message
            tasks.append(t)
        try:
            return cls(tuple(tasks), name=str(d.get("name") or ""), domain=d.get("domain"),
                       domain_params=dict(d.get("domain_params") or {}), programs=d.get("programs"),
                       provenance=dict(d.get("provenance") or {}), source=source)
        except TaskError as exc:
            raise TaskError(f"{where}{exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "TaskSet":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"task set file not found: {path}")
        try:
            d = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TaskError(f"{path}: not valid YAML ({exc})") from None
        return cls.from_dict(d, source=str(path))
