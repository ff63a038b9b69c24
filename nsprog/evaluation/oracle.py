"""Ceilings printed beside a model's scores: the programs that generated a dataset (the
*oracle*), where the dataset has them. The supervised-program ceiling, for any labelled
data, is in :mod:`nsprog.evaluation.ceiling`."""

from __future__ import annotations

import numpy as np

from nsprog.data.synthetic import oracle_clusters
from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.metrics import cluster_metrics

__all__ = ["has_oracle", "oracle_metrics", "oracle_program_clusters", "ORACLE_PROGRAMS"]

#: the generator's programs, in the order a k-program oracle uses them
ORACLE_PROGRAMS = ("1[final x > 10]", "1[final y > 10]")


def has_oracle(test: Trajectories, labels: str = "label") -> bool:
    """The synthetic generator's classes are its thresholds of final x and final y."""
    return test.metadata.get("domain") == "synthetic" and labels in ("label", "labels")


def oracle_program_clusters(test: Trajectories, n_programs: int = 2) -> np.ndarray:
    """Cluster ids of the first ``n_programs`` (1 or 2) oracle programs on synthetic windows."""
    if n_programs == 2:
        return oracle_clusters(test)
    if n_programs == 1:
        return (test.states[:, -1, 0] > 10.0).astype(np.int64)
    raise ValueError(f"the synthetic oracle has 1 or 2 programs ({', '.join(ORACLE_PROGRAMS)}); got n_programs = "
                     f"{n_programs}")


def oracle_metrics(test: Trajectories, labels: str = "label", n_programs: int = 2) -> dict | None:
    """Cluster metrics of the oracle programs on ``test`` (None when the data have none)."""
    if not has_oracle(test, labels):
        return None
    return dict(cluster_metrics(test.label_column(labels), oracle_program_clusters(test, n_programs)),
                program=", ".join(ORACLE_PROGRAMS[:n_programs]))
