"""How much of a binary factor a representation holds: agreement of a program's bit, and
cross-validated read-outs of a latent (0.5 = nothing, for a balanced factor)."""

from __future__ import annotations

import numpy as np

__all__ = ["agreement", "linear_readout", "knn_readout"]


def agreement(bits: np.ndarray, factor: np.ndarray) -> float:
    """Share of windows where a binary program agrees with a binary factor (up to relabelling)."""
    same = float(np.mean(np.asarray(bits) == np.asarray(factor)))
    return max(same, 1.0 - same)


def linear_readout(z: np.ndarray, factor: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a logistic regression predicting ``factor`` from
    ``z``. The latent is standardised first: neural latents can live on a scale of 0.01,
    where an L2-regularised read-out underfits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(cross_val_score(clf, z, factor, cv=5).mean())


def knn_readout(z: np.ndarray, factor: np.ndarray, k: int = 25) -> float:
    """Like :func:`linear_readout` with a k-nearest-neighbour classifier on the whitened latent:
    it also finds a factor stored non-linearly (strands, folds) that a linear read-out misses."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(PCA(whiten=True), KNeighborsClassifier(min(k, max(1, len(factor) // 5))))
    return float(cross_val_score(clf, z, factor, cv=5).mean())
