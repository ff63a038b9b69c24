"""Ceilings printed beside a model's scores: the programs that generated a dataset (the
*oracle*), where the dataset has them."""

from __future__ import annotations

from nsprog.data.synthetic import oracle_clusters
from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.metrics import cluster_metrics

__all__ = ["has_oracle", "oracle_metrics"]


def has_oracle(test: Trajectories, labels: str = "label") -> bool:
    """The synthetic generator's classes are its thresholds of final x and final y."""
    return test.metadata.get("domain") == "synthetic" and labels in ("label", "labels")


def oracle_metrics(test: Trajectories, labels: str = "label") -> dict | None:
    """Cluster metrics of the oracle programs on ``test`` (None when the data have none)."""
    if not has_oracle(test, labels):
        return None
    return dict(cluster_metrics(test.label_column(labels), oracle_clusters(test)),
                program="1[final x > 10], 1[final y > 10]")
