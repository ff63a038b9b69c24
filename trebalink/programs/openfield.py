"""A single-mouse open-field task set: speed, nose movement, head-body angle, distance to
the arena wall and body elongation, each split into 3 classes at training-split quantiles
(the open-field samples come from different cameras and scales, so no fixed pixel
thresholds; the resolved thresholds are recorded in the fitted set)."""

from __future__ import annotations

from trebalink.tasks import Task, TaskSet

__all__ = ["expert_tasks", "EXPERT"]

#: (name, function, args): quantile classes (3) on the training split
EXPERT = (
    ("speed", "speed", {"individual": 0, "span": 2}),
    ("nose_movement", "nose_movement", {"individual": 0, "span": 2}),
    ("head_body_angle", "head_body_angle", {"individual": 0}),
    ("wall_distance", "feature", {"feature": "wall_distance", "reduce": "centre"}),
    ("elongation", "feature", {"feature": "elongation", "reduce": "centre"}),
)


def expert_tasks(keypoints: str = "auto", classes: int = 3) -> TaskSet:
    tasks = tuple(Task(name, fn, args, "categorical", quantiles=classes, description=f"open-field expert task ({fn})",
                       provenance={"source": "expert:openfield"})
                  for name, fn, args in EXPERT)
    return TaskSet(tasks, name="expert:openfield", domain="openfield", domain_params={"keypoints": keypoints},
                   provenance={"source": "expert:openfield"})
