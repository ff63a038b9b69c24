"""The task function table and the shipped task sets.

Every task names a function of this table (``Task.fn``) with its arguments (``Task.args``):

* expert functions of the TREBA mouse tasks (:mod:`trebalink.programs.mouse`: ``speed``,
  ``social_angle``, ``nose_movement``, ``nose_nose_distance``, ``nose_tail_distance``,
  ``head_body_angle``), which also serve the single-mouse open-field set;
* ``destination_region`` for team sports (:mod:`trebalink.programs.basketball`);
* ``feature``: any feature of the task set's nsprog domain, reduced over the window
  (:mod:`trebalink.programs.generic`);
* ``program``: a learned nsprog program (:mod:`trebalink.programs.learned`);
* ``random``: a seeded random projection of the window, the control for task content
  (:mod:`trebalink.programs.random_tasks`).

Shipped sets (:func:`task_set`): ``expert:mouse`` (TREBA's 10 tasks), ``expert:openfield``,
``expert:basketball``, ``expert:synthetic``, ``random:K[:C]`` and a task-set YAML file.
The table is explicit; adding a function means adding it to ``FUNCTIONS`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from nsprog.data.trajectories import Trajectories
from trebalink.tasks import Task, TaskError, TaskSet

__all__ = ["TaskFunction", "FUNCTIONS", "EXPERT_SETS", "make_function", "fit_arguments", "task_set",
           "domain_context", "REQUIRED"]

REQUIRED = object()  # marks an argument without a default


@dataclass(frozen=True)
class TaskFunction:
    """One entry of the function table.

    ``make(taskset, task, args, traj, cache)`` returns the vectorised ``states -> values``
    callable for a layout (``args`` are checked and completed with defaults); ``fit``
    (optional) returns data-dependent arguments computed on the training windows (recorded in
    the fitted set); ``domains`` lists the task-set domains it works with (None: any).
    """

    name: str
    make: Callable[..., Callable[[torch.Tensor], torch.Tensor]]
    args: Mapping[str, Any] = field(default_factory=dict)
    fit: Callable[..., dict | None] | None = None
    domains: tuple[str, ...] | None = None
    description: str = ""


def _table() -> dict[str, TaskFunction]:
    from trebalink.programs import basketball, generic, learned, mouse, random_tasks

    out: dict[str, TaskFunction] = {}
    for module in (mouse, basketball, generic, learned, random_tasks):
        for fn in module.FUNCTIONS:
            out[fn.name] = fn
    return out


#: function name -> TaskFunction (filled on first use; see the module docstring)
FUNCTIONS: dict[str, TaskFunction] = {}


def _functions() -> dict[str, TaskFunction]:
    if not FUNCTIONS:
        FUNCTIONS.update(_table())
    return FUNCTIONS


def _check_args(fn: TaskFunction, task: Task) -> dict:
    unknown = sorted(set(task.args) - set(fn.args))
    if unknown:
        raise TaskError(f"function {fn.name!r} has no argument(s) {unknown}; its arguments: "
                        f"{', '.join(fn.args) or 'none'}")
    out = {}
    for k, default in fn.args.items():
        if k in task.args:
            out[k] = task.args[k]
        elif default is REQUIRED:
            raise TaskError(f"function {fn.name!r} needs the argument {k!r}")
        else:
            out[k] = default
    return out


def _lookup(taskset: TaskSet, task: Task) -> TaskFunction:
    table = _functions()
    if task.fn not in table:
        raise TaskError(f"unknown task function {task.fn!r}; available: {', '.join(sorted(table))}")
    fn = table[task.fn]
    if fn.domains is not None and taskset.domain not in fn.domains:
        raise TaskError(f"function {fn.name!r} works on task sets of domain {', '.join(fn.domains)}; this set's "
                        f"domain is {taskset.domain!r}")
    return fn


def domain_context(taskset: TaskSet, traj: Trajectories, cache: dict):
    """``(domain, context)`` of the set's nsprog feature domain for this layout (cached)."""
    from nsprog.features.registry import get_domain

    if taskset.domain is None:
        raise TaskError("this function reads domain features, but the task set names no domain (set 'domain:')")
    key = ("domain", taskset.domain)
    if key not in cache:
        dom = get_domain(taskset.domain, **dict(taskset.domain_params or {}))
        cache[key] = (dom, dom.prepare(traj))
    return cache[key]


def make_function(taskset: TaskSet, task: Task, traj: Trajectories, cache: dict) -> Callable:
    fn = _lookup(taskset, task)
    return fn.make(taskset, task, _check_args(fn, task), traj, cache)


def fit_arguments(taskset: TaskSet, task: Task, train: Trajectories) -> dict | None:
    """Data-dependent arguments of ``task`` computed on ``train`` (None when it has none)."""
    fn = _lookup(taskset, task)
    if fn.fit is None:
        return None
    _check_args(fn, task)
    return fn.fit(taskset, task, train)


def _expert_sets() -> dict[str, Callable[..., TaskSet]]:
    from trebalink.programs import basketball, mouse, openfield, synthetic

    return {"mouse": mouse.expert_tasks, "openfield": openfield.expert_tasks, "basketball": basketball.expert_tasks,
            "synthetic": synthetic.expert_tasks}


EXPERT_SETS = ("mouse", "openfield", "basketball", "synthetic")


def task_set(spec: str | TaskSet, seed: int = 0, domain: str | None = None,
             domain_params: Mapping | None = None) -> TaskSet:
    """The task set a spec names: ``expert:<mouse|openfield|basketball|synthetic>``,
    ``random:K`` or ``random:K:C`` (K random tasks of C classes, default 3, seeded by
    ``seed``), ``none`` (no tasks) or the path of a task-set YAML file.

    ``domain`` / ``domain_params`` replace the expert set's domain parameters (keypoint
    mapping, field) when given; random sets record them for the augmentations.
    """
    if isinstance(spec, TaskSet):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TaskError(f"tasks: expected expert:NAME, random:K[:C], none or a task-set YAML path; got {spec!r}")
    if spec == "none":
        return TaskSet((), name="none", domain=domain, domain_params=dict(domain_params or {}))
    kind, _, rest = spec.partition(":")
    if kind == "expert" and rest:
        sets = _expert_sets()
        if rest not in sets:
            raise TaskError(f"tasks: unknown expert set {rest!r}; available: {', '.join(EXPERT_SETS)}")
        ts = replace(sets[rest](), source=spec)  # messages name the set
        if domain_params:
            ts = replace(ts, domain_params={**dict(ts.domain_params), **dict(domain_params)})
        return ts
    if kind == "random" and rest:
        from trebalink.programs.random_tasks import random_tasks

        parts = rest.split(":")
        try:
            k = int(parts[0])
            c = int(parts[1]) if len(parts) > 1 else 3
        except ValueError:
            raise TaskError(f"tasks: expected random:K or random:K:C with integers; got {spec!r}") from None
        return replace(random_tasks(k, c, seed, domain=domain, domain_params=domain_params), source=spec)
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return TaskSet.load(path)
    raise TaskError(f"tasks: {spec!r} is neither expert:NAME ({', '.join(EXPERT_SETS)}), random:K[:C], none, "
                    "nor an existing task-set YAML file")
