"""Binding task sets to data and fitting them on the training windows.

:mod:`trebalink.tasks` holds the data model (tasks, task sets, their YAML form) and
:mod:`trebalink.programs` the function table; this module joins the two: it resolves each
task's named function against a data layout (:func:`bind_tasks`), resolves quantile thresholds
and drops constant tasks on the training split (:func:`fit_tasks`), and labels windows
(:func:`label_matrix`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from nsprog.data.trajectories import Trajectories
from trebalink.programs import fit_arguments, make_function
from trebalink.tasks import BoundTasks, Task, TaskError, TaskSet, discretize, quantile_thresholds, task_location

__all__ = ["FittedTasks", "bind_tasks", "fit_tasks", "label_matrix"]

log = logging.getLogger("nsprog")


@dataclass
class FittedTasks:
    """The result of :func:`fit_tasks`: the resolved set, training values and labels."""

    tasks: TaskSet
    values: np.ndarray
    labels: np.ndarray
    dropped: list[str]
    notes: list[str]


def bind_tasks(tasks: TaskSet, traj: Trajectories) -> BoundTasks:
    """Resolve every task's function against the layout of ``traj`` (only its metadata and
    shape are read, plus presence checks of some domains)."""
    cache: dict = {}
    fns = []
    for i, t in enumerate(tasks.tasks):
        if callable(t.fn):
            fns.append(t.fn)
            continue
        try:
            fns.append(make_function(tasks, t, traj, cache))
        except TaskError as exc:
            raise TaskError(f"{task_location(tasks.source, i, t.name, 'args')}: {exc}") from None
        except (KeyError, ValueError, IndexError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise TaskError(f"{task_location(tasks.source, i, t.name, 'fn')}: {msg}") from None
    return BoundTasks(tasks.tasks, fns)


def fit_tasks(tasks: TaskSet, train: Trajectories, force: bool = False, batch_size: int = 65536) -> FittedTasks:
    """Resolve quantile thresholds and data-dependent arguments on the training windows,
    and drop tasks that are constant there (useless as supervision) unless ``force``.

    Returns a :class:`FittedTasks` with the resolved set (thresholds recorded), the
    training values and labels, and the names of the dropped tasks.
    """
    resolved_args = list(tasks.tasks)
    for i, t in enumerate(resolved_args):
        if not callable(t.fn):
            new_args = fit_arguments(tasks, t, train)
            if new_args is not None:
                resolved_args[i] = replace(t, args=new_args)
    staged = replace(tasks, tasks=tuple(resolved_args))
    values, _ = bind_tasks(staged, train).label_windows(train, batch_size)
    resolved, dropped, notes = [], [], []
    for j, t in enumerate(staged.tasks):
        v = values[:, j]
        finite = v[np.isfinite(v)]
        if t.kind != "continuous" and t.thresholds is None:
            thr = quantile_thresholds(finite, t.quantiles)
            prov = dict(t.provenance, quantiles_from=f"{len(finite)} training windows")
            t = replace(t, thresholds=thr, provenance=prov) if thr else t
        constant = finite.size == 0 or (float(finite.min()) == float(finite.max()))
        if t.discrete and t.thresholds is not None and finite.size:
            constant = constant or len(np.unique(discretize(finite, t.thresholds))) < 2
        if t.discrete and not t.thresholds:
            constant = True
        if constant:
            why = ("abstains on every training window" if finite.size == 0 else
                   f"takes one {'value' if t.kind == 'continuous' else 'class'} on all {finite.size} labelled "
                   "training windows")
            where = task_location(tasks.source, j, t.name, "fn")
            if force:
                log.warning("%s %s; kept because of --force, but it gives no supervision", where, why)
                notes.append(f"{t.name}: {why} (kept: force)")
                if t.discrete and not t.thresholds:
                    raise TaskError(f"{where} {why}: no threshold can split it, even with force")
            else:
                log.warning("%s %s: useless as supervision, dropped (pass --force / force=True to keep it)",
                            where, why)
                dropped.append(t.name)
                notes.append(f"{t.name}: {why} (dropped)")
                continue
        resolved.append(t)
    keep = [staged.names.index(t.name) for t in resolved]
    prov = dict(tasks.provenance, fitted_on=f"{len(train)} training windows", dropped=dropped)
    fitted = replace(staged, tasks=tuple(resolved), provenance=prov)
    vals = values[:, keep]
    labels = BoundTasks(fitted.tasks, [None] * len(fitted.tasks)).classes(torch.from_numpy(vals)).numpy()
    return FittedTasks(fitted, vals, labels, dropped, notes)


def label_matrix(tasks: TaskSet | Sequence[Task], traj: Trajectories) -> np.ndarray:
    """``[N, n_tasks]`` class labels (``ABSTAIN`` where a task does not label a window)."""
    ts = tasks if isinstance(tasks, TaskSet) else TaskSet(tuple(tasks))
    return bind_tasks(ts, traj).label_windows(traj)[1]
