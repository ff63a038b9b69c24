"""The synthetic set: the two factors of the paper's synthetic data as an expert would write
them (final x and final y thresholded at 10, the oracle programs; label spaces ``c_x`` and
``c_y`` so the analysis reports their accuracy against the ground truth) and the average
speed in 3 quantile classes (a nuisance factor)."""

from __future__ import annotations

from trebalink.tasks import Task, TaskSet

__all__ = ["expert_tasks"]


def expert_tasks() -> TaskSet:
    prov = {"source": "expert:synthetic"}
    tasks = (
        Task("final_x", "feature", {"feature": "final_x", "reduce": "last"}, "binary", (10.0,), label_space="c_x",
             description="final x position above 10", provenance=prov),
        Task("final_y", "feature", {"feature": "final_y", "reduce": "last"}, "binary", (10.0,), label_space="c_y",
             description="final y position above 10", provenance=prov),
        Task("avg_speed", "feature", {"feature": "avg_speed", "reduce": "first"}, "categorical", quantiles=3,
             description="mean step length over the window", provenance=prov),
    )
    return TaskSet(tasks, name="expert:synthetic", domain="synthetic", provenance=prov)
