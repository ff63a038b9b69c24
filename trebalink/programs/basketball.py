"""A basketball task set after the labelling functions of the programmatic style-consistency
work (Zhan et al. 2020): a group's average speed, its displacement, the court region where
it ends the window, and its distance to the basket, on offense / defense team windows
(``nsprog.data.teams``: oriented so that the offense attacks the left basket).

``destination_region`` is the region of the group's mean final position on a grid of
``x_edges`` (feet along the court) by ``y_edges`` (across it): region ``ix * (len(y_edges) + 1)
+ iy``; by default three bands at 14 and 19 ft from the attacked baseline (a group's mean
position sits mostly 12-22 ft from it in half-court play: 10th-90th percentile on the
SportVU sample) by the two sides of the court, 6 regions. It abstains (-1) when no player of the group
is present in the last frame. The other three tasks are team features
(:mod:`nsprog.features.team`) in 3 quantile classes of the training split.
"""

from __future__ import annotations

import math

import torch

from nsprog.features.team import TeamContext
from trebalink.programs import TaskFunction, domain_context
from trebalink.tasks import Task, TaskError, TaskSet

__all__ = ["FUNCTIONS", "expert_tasks", "destination_region"]

X_EDGES = (14.0, 19.0)
Y_EDGES = (25.0,)


def destination_region(final_xy: torch.Tensor, x_edges, y_edges) -> torch.Tensor:
    """Region id of positions ``[B, 2]`` on the grid (NaN stays NaN)."""
    ix = (final_xy[:, 0:1] > torch.as_tensor(list(x_edges), dtype=final_xy.dtype, device=final_xy.device)).sum(1)
    iy = (final_xy[:, 1:2] > torch.as_tensor(list(y_edges), dtype=final_xy.dtype, device=final_xy.device)).sum(1)
    region = (ix * (len(y_edges) + 1) + iy).to(final_xy.dtype)
    return torch.where(torch.isfinite(final_xy).all(1), region, torch.full_like(region, math.nan))


def _edges(value, name: str) -> tuple[float, ...]:
    try:
        edges = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise TaskError(f"{name} must be a list of numbers; got {value!r}") from None
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise TaskError(f"{name} must be strictly increasing; got {list(edges)}")
    return edges


def _make_destination(taskset, task, args, traj, cache):
    _, ctx = domain_context(taskset, traj, cache)
    if not isinstance(ctx, TeamContext):
        raise TaskError(f"destination_region needs team windows (domain team); got {taskset.domain!r}")
    xe, ye = _edges(args["x_edges"], "x_edges"), _edges(args["y_edges"], "y_edges")
    slots = ctx.slots

    def fn(s: torch.Tensor) -> torch.Tensor:
        last = s[:, -1].reshape(s.shape[0], slots, 3)
        present = (last[..., 2] > 0.5).to(s.dtype)
        count = present.sum(1)
        mean = (last[..., :2] * present[..., None]).sum(1) / count.clamp_min(1.0)[:, None]
        mean = torch.where(count[:, None] > 0, mean, torch.full_like(mean, math.nan))
        return destination_region(mean, xe, ye)

    return fn


FUNCTIONS = (
    TaskFunction("destination_region", _make_destination, {"x_edges": list(X_EDGES), "y_edges": list(Y_EDGES)},
                 domains=("team",), description="court region of the group's mean final position"),
)


def expert_tasks(classes: int = 3) -> TaskSet:
    prov = {"source": "expert:basketball (after Zhan et al. 2020, programmatic style-consistency)"}
    n_regions = (len(X_EDGES) + 1) * (len(Y_EDGES) + 1)
    tasks = (
        Task("average_speed", "feature", {"feature": "avg_speed", "reduce": "mean"}, quantiles=classes,
             description="the group's mean player speed over the window (ft/s)", provenance=prov),
        Task("displacement", "feature", {"feature": "avg_displacement", "reduce": "first"}, quantiles=classes,
             description="mean distance between each player's first and last position (ft)", provenance=prov),
        Task("destination_region", "destination_region", {}, "categorical",
             tuple(r + 0.5 for r in range(n_regions - 1)),
             description=f"court region ({n_regions}) of the group's mean final position", provenance=prov),
        Task("distance_to_basket", "feature", {"feature": "avg_dist_target", "reduce": "mean"}, quantiles=classes,
             description="the group's mean distance to the attacked basket over the window (ft)", provenance=prov),
    )
    return TaskSet(tasks, name="expert:basketball", domain="team", domain_params={"preset": "basketball"},
                   provenance=prov)
