"""Cluster metrics against reference labels, on top of scikit-learn.

Purity = sum over clusters of the largest class count / N (from the contingency matrix);
NMI = ``normalized_mutual_info_score`` (arithmetic mean normalisation, sklearn's default);
RI = ``rand_score``; ARI = ``adjusted_rand_score``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, rand_score
from sklearn.metrics.cluster import contingency_matrix

__all__ = ["purity", "nmi", "rand_index", "ari", "cluster_metrics"]


def _check(labels, clusters) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    clusters = np.asarray(clusters).ravel()
    if labels.shape != clusters.shape:
        raise ValueError(f"labels has {labels.shape[0]} entries but clusters has {clusters.shape[0]}; expected equal")
    if labels.size == 0:
        raise ValueError("cluster metrics need at least one item; got empty arrays")
    return labels, clusters


def purity(labels, clusters) -> float:
    """Fraction of items whose cluster's majority class is their own class."""
    labels, clusters = _check(labels, clusters)
    cm = contingency_matrix(labels, clusters)  # rows: classes, columns: clusters
    return float(cm.max(axis=0).sum() / cm.sum())


def nmi(labels, clusters) -> float:
    labels, clusters = _check(labels, clusters)
    return float(normalized_mutual_info_score(labels, clusters))


def rand_index(labels, clusters) -> float:
    labels, clusters = _check(labels, clusters)
    return float(rand_score(labels, clusters))


def ari(labels, clusters) -> float:
    labels, clusters = _check(labels, clusters)
    return float(adjusted_rand_score(labels, clusters))


def cluster_metrics(labels, clusters) -> dict[str, float]:
    """``{"purity", "nmi", "ri", "ari", "n_clusters", "n"}`` for cluster ids against labels."""
    labels, clusters = _check(labels, clusters)
    return {
        "purity": purity(labels, clusters),
        "nmi": nmi(labels, clusters),
        "ri": rand_index(labels, clusters),
        "ari": ari(labels, clusters),
        "n_clusters": int(len(np.unique(clusters))),
        "n": int(labels.size),
    }
