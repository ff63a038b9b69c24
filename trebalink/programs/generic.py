"""``feature``: any feature of the task set's nsprog domain, reduced over the window.

``args: {feature: NAME, reduce: centre | mean | min | max | first | last | frame, frame: INDEX}``
computes the named per-frame feature of :mod:`nsprog.features` (``[B, T+1]``) and reduces it
to one value per window: the centre frame (``n_frames // 2``), the mean, the min or max, the
first or last frame, or frame ``frame`` (``reduce: frame``). Users write their own tasks this
way in YAML without any code.
"""

from __future__ import annotations

import torch

from trebalink.programs import REQUIRED, TaskFunction, domain_context
from trebalink.tasks import TaskError

__all__ = ["FUNCTIONS", "REDUCTIONS", "reduce_frames"]

REDUCTIONS = ("centre", "mean", "min", "max", "first", "last", "frame")


def reduce_frames(v: torch.Tensor, reduce: str, frame: int | None = None) -> torch.Tensor:
    """``[B, T+1] -> [B]`` by one of :data:`REDUCTIONS`."""
    if reduce == "centre":
        return v[:, v.shape[1] // 2]
    if reduce == "mean":
        return v.mean(1)
    if reduce == "min":
        return v.amin(1)
    if reduce == "max":
        return v.amax(1)
    if reduce == "first":
        return v[:, 0]
    if reduce == "last":
        return v[:, -1]
    return v[:, frame]


def _make_feature(taskset, task, args, traj, cache):
    dom, ctx = domain_context(taskset, traj, cache)
    name = args["feature"]
    if name not in dom.features:
        raise TaskError(f"the {dom.name!r} domain has no feature {name!r}; available: {', '.join(dom.features)}")
    reduce, frame = args["reduce"], args["frame"]
    if reduce not in REDUCTIONS:
        raise TaskError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {reduce!r}")
    if reduce == "frame":
        if isinstance(frame, bool) or not isinstance(frame, int) or not -traj.n_frames <= frame < traj.n_frames:
            raise TaskError(f"reduce: frame needs frame: an index into the {traj.n_frames} frames; got {frame!r}")
    elif frame is not None:
        raise TaskError(f"frame: {frame!r} is only read with reduce: frame (reduce is {reduce!r})")
    feature = dom.features[name].fn

    def fn(s: torch.Tensor) -> torch.Tensor:
        return reduce_frames(feature(s, ctx), reduce, frame)

    return fn


FUNCTIONS = (
    TaskFunction("feature", _make_feature, {"feature": REQUIRED, "reduce": "centre", "frame": None},
                 description="a feature of the set's nsprog domain reduced over the window"),
)
