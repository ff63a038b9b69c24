"""Random assignment: every window gets a cluster drawn uniformly from ``n_clusters``, the
floor of the paper's Table 1 (NMI 0 in expectation, purity = the majority class share)."""

from __future__ import annotations

import numpy as np

from nsprog.base import Estimator
from nsprog.data.trajectories import Trajectories
from nsprog.seeds import SeedStreams

__all__ = ["RandomAssignment"]


class RandomAssignment(Estimator):
    """Uniformly random cluster ids, seeded: the same windows count gives the same ids.

    Parameters
    ----------
    n_clusters : int, default=4
    seed : int, default=0

    Attributes (after ``fit``)
    --------------------------
    n_clusters_ : the number of clusters drawn from
    """

    _fitted_attributes = ("n_clusters_",)

    def __init__(self, n_clusters: int = 4, seed: int = 0):
        self.n_clusters = n_clusters
        self.seed = seed

    def fit(self, train: Trajectories, y=None) -> "RandomAssignment":
        self._clear_fitted()
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"RandomAssignment: n_clusters must be an integer >= 2; got {k!r}")
        if not isinstance(train, Trajectories):
            raise TypeError(f"RandomAssignment.fit expects nsprog Trajectories windows; got {type(train).__name__}")
        self._set_fitted(n_clusters_=int(k))
        return self

    def predict(self, traj: Trajectories) -> np.ndarray:
        self._check_fitted()
        rng = np.random.default_rng(SeedStreams(self.seed).seed_for("random_assignment"))
        return rng.integers(0, self.n_clusters_, size=len(traj)).astype(np.int64)

    def transform(self, traj: Trajectories) -> np.ndarray:
        """One-hot rows of the assigned clusters ``[N, n_clusters]`` (its only "latent")."""
        ids = self.predict(traj)
        return np.eye(self.n_clusters_, dtype=np.float32)[ids]
