"""The random-task control: seeded random projections of the window, split at training
quantiles, so that a gain from real tasks can be told apart from a gain from merely having
K supervision targets.

Task ``i`` of a set with seed ``s`` projects the window standardised per state dimension
(``(x - mean) / std`` with the training split's statistics) onto a fixed Gaussian direction
drawn from the named stream ``(s, "random_task", i)``, divided by the square root of its
length. The statistics and the window shape are data-dependent arguments resolved by
:func:`trebalink.labelling.fit_tasks` and recorded in the fitted set, so the same tasks label new data.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nsprog.seeds import SeedStreams
from trebalink.programs import TaskFunction
from trebalink.tasks import Task, TaskError, TaskSet

__all__ = ["FUNCTIONS", "random_tasks", "projection"]

_ARGS = {"seed": 0, "index": 0, "frames": None, "dims": None, "mean": None, "std": None}


def projection(seed: int, index: int, length: int) -> torch.Tensor:
    """The fixed direction of random task ``index`` (float32, ``[length]``)."""
    gen = SeedStreams(seed).generator("random_task", index)
    return torch.randn(length, generator=gen, dtype=torch.float64).to(torch.float32)


def _fit(taskset, task, train):
    flat = train.states.reshape(-1, train.state_dim).astype(np.float64)
    std = np.maximum(flat.std(0), 1e-6)
    return {**task.args, "frames": train.n_frames, "dims": train.state_dim,
            "mean": [float(v) for v in flat.mean(0)], "std": [float(v) for v in std]}


def _make_random(taskset, task, args, traj, cache):
    for key in ("seed", "index"):
        if isinstance(args[key], bool) or not isinstance(args[key], int) or args[key] < 0:
            raise TaskError(f"{key} must be a non-negative integer; got {args[key]!r}")
    missing = [k for k in ("frames", "dims", "mean", "std") if args[k] is None]
    if missing:
        raise TaskError(f"arguments {missing} are resolved on training windows; fit the task set first "
                        "(trebalink.labelling.fit_tasks, which `trebalink train` runs)")
    frames, dims = int(args["frames"]), int(args["dims"])
    if (traj.n_frames, traj.state_dim) != (frames, dims):
        raise TaskError(f"fitted on windows of {frames} frames x {dims} dims; these windows have "
                        f"{traj.n_frames} x {traj.state_dim}")
    mean = torch.tensor(args["mean"], dtype=torch.float32)
    std = torch.tensor(args["std"], dtype=torch.float32)
    if mean.shape != (dims,) or std.shape != (dims,):
        raise TaskError(f"mean and std must have {dims} entries (one per state dim)")
    w = projection(args["seed"], args["index"], frames * dims) / math.sqrt(frames * dims)

    def fn(s: torch.Tensor) -> torch.Tensor:
        if s.shape[1:] != (frames, dims):
            raise TaskError(f"{task.name}: bound to windows of {frames} x {dims}; got {tuple(s.shape[1:])}")
        z = (s - mean.to(s.device)) / std.to(s.device)
        return z.reshape(s.shape[0], -1) @ w.to(s.device)

    return fn


FUNCTIONS = (
    TaskFunction("random", _make_random, _ARGS, fit=_fit,
                 description="a seeded random projection of the standardised window (control)"),
)


def random_tasks(k: int, classes: int = 3, seed: int = 0, domain: str | None = None,
                 domain_params=None) -> TaskSet:
    """``k`` random tasks of ``classes`` quantile classes each, seeded by ``seed``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise TaskError(f"random tasks: expected a number of tasks >= 1; got {k!r}")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise TaskError(f"random tasks: expected a number of classes >= 2; got {classes!r}")
    kind = "binary" if classes == 2 else "categorical"
    prov = {"source": f"random:{k}:{classes}", "seed": int(seed)}
    tasks = tuple(Task(f"random_{i + 1}", "random", {"seed": int(seed), "index": i}, kind, quantiles=classes,
                       description="random projection of the standardised window (control)", provenance=prov)
                  for i in range(k))
    return TaskSet(tasks, name=f"random:{k}:{classes}", domain=domain, domain_params=dict(domain_params or {}),
                   provenance=prov)
