"""Learned nsprog programs as tasks: ``fn: program``, ``args: {program: NAME}``.

The task set carries the programs file's payload (``TaskSet.programs``: the DSL, the feature
pipeline with its training standardisation and every program with its parameters), so a
saved set labels windows without the run folder. A program's value is its logit; a binary
task thresholds it at 0 (the program's own bit), a categorical one splits it at
training-split quantiles. :func:`export_tasks` builds the set from a fitted run folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nsprog.programs import ProgramSet
from trebalink.programs import REQUIRED, TaskFunction
from trebalink.tasks import Task, TaskError, TaskSet

__all__ = ["FUNCTIONS", "export_tasks", "program_set"]


def program_set(taskset: TaskSet, cache: dict | None = None) -> ProgramSet:
    """The :class:`~nsprog.programs.ProgramSet` a task set carries (cached per binding)."""
    cache = {} if cache is None else cache
    if "programs" not in cache:
        if not taskset.programs:
            raise TaskError("this task set has program tasks but no 'programs' section (export it with "
                            "`trebalink export RUN_DIR`)")
        try:
            cache["programs"] = ProgramSet.from_dict(taskset.programs, source=f"{taskset.source or 'task set'}: programs")
        except (KeyError, ValueError) as exc:
            raise TaskError(f"its 'programs' section cannot be read: {exc}") from None
    return cache["programs"]


def _make_program(taskset, task, args, traj, cache):
    from nsprog.dsl.semantics import StackedProgram
    from nsprog.features.registry import get_domain

    pset = program_set(taskset, cache)
    name = args["program"]
    if name not in pset.programs:
        raise TaskError(f"no program {name!r} in the set's programs; available: {', '.join(pset.programs)}")
    prog = pset.programs[name]
    if prog.sig.out.dim != 1:
        raise TaskError(f"program {name!r} has {prog.sig.out.dim} outputs; only single-output (binary) programs "
                        "become tasks")
    pipe = pset.pipeline
    key = ("program-domain",)
    if key not in cache:
        dom = get_domain(pipe.domain, **dict(pipe.domain_params or {}))
        dom.check_names(pipe.names)
        cache[key] = (dom, dom.prepare(traj))
    dom, ctx = cache[key]
    module = StackedProgram([prog], pset.dsl).eval()
    scaler = pipe.scaler_
    fns = [dom.features[n].fn for n in pipe.names]

    def fn(s: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([f(s, ctx) for f in fns], dim=-1).to(torch.float32)
        x = scaler.transform(feats)
        return module.to(s.device)(x)[0][:, 0]

    return fn


FUNCTIONS = (
    TaskFunction("program", _make_program, {"program": REQUIRED}, description="a learned nsprog program's logit"),
)


def export_tasks(run_dir: str | Path, classes: int = 2) -> TaskSet:
    """One task per program of a fitted nsprog run folder (its ``programs.json``, or its
    ``checkpoint.pt`` when there is no programs file), or of a ``programs.json`` file.

    ``classes=2``: binary tasks, the logit thresholded at 0 (the program's bit);
    ``classes>=3``: categorical tasks at quantiles of the logit, resolved on a training split
    by :func:`trebalink.labelling.fit_tasks` (``trebalink train`` does this and records the thresholds).
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise TaskError(f"--classes: expected 2 (the program's bit) or more (quantile classes); got {classes!r}")
    path = Path(run_dir)
    if path.is_dir() and not (path / "programs.json").is_file() and (path / "checkpoint.pt").is_file():
        from nsprog.encoder import NeurosymbolicEncoder  # a checkpoint-only folder (e.g. an interrupted fit)

        pset = NeurosymbolicEncoder.load(path).program_set()
    else:
        pset = ProgramSet.load(path)
    folder = (path if path.is_dir() else path.parent).resolve()
    if not pset.programs:
        raise TaskError(f"{folder} holds no programs (a fit with n_programs: 0); nothing to export")
    tasks = []
    for name in pset.programs:
        d = pset.describe(name)
        prov = {"run": str(folder), "program": d["text"], "rule": d["rule"], "structure": d["structure"]}
        if classes == 2:
            tasks.append(Task(name, "program", {"program": name}, "binary", (0.0,), description=d["text"],
                              provenance=prov))
        else:
            tasks.append(Task(name, "program", {"program": name}, "categorical", quantiles=classes,
                              description=d["text"], provenance=prov))
    return TaskSet(tuple(tasks), name=f"learned:{folder.name}", domain=pset.pipeline.domain,
                   domain_params=dict(pset.pipeline.domain_params or {}), programs=pset.to_dict(),
                   provenance={"source": "learned", "run": str(folder), "classes": classes})
