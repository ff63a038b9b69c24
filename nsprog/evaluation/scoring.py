"""Scoring a fitted encoder on labelled windows: cluster metrics of its programs (or of
K-means on its neural latent, with no programs), the oracle's on the same windows, each
program's agreement with the known factors, and read-outs of the neural latent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.metrics import cluster_metrics
from nsprog.evaluation.oracle import oracle_metrics
from nsprog.evaluation.readouts import agreement, knn_readout, linear_readout
from nsprog.settings import Settings, param

__all__ = ["EvalSettings", "score_encoder", "usable_factors"]

log = logging.getLogger("nsprog")


@dataclass
class EvalSettings(Settings):
    """How a fit is scored and illustrated."""

    labels: str = "label"  # label column the clusters are scored against
    # further binary columns: per-program agreement and the neural latent's read-outs are
    # reported (columns the test windows lack are skipped with a warning)
    factors: list[str] = field(default_factory=lambda: ["c_x", "c_y"])
    kmeans_clusters: int | None = param(None, ge=2)  # 0-program fits: K-means clusters of the neural latent
    plots: bool = True


def usable_factors(test: Trajectories, factors: list[str]) -> list[str]:
    """The factor columns ``test`` has (the others are named in a warning)."""
    missing = [f for f in factors if f not in test.factors]
    if missing:
        log.warning("eval.factors %s are not columns of the test windows (they have %s); skipped",
                    missing, sorted(test.factors) or "none")
    return [f for f in factors if f in test.factors]


def score_encoder(est, test: Trajectories, cfg: EvalSettings, n_clusters: int | None = None) -> dict:
    """Everything ``metrics.json`` reports about ``est`` on ``test``."""
    labels = test.label_column(cfg.labels)
    factors = usable_factors(test, cfg.factors)
    out: dict = {"n_test": len(test)}
    z = est.transform(test)
    if est.programs_:
        out["model"] = cluster_metrics(labels, est.predict(test))
        bits = (est.program_logits(test) > 0).astype(int)
        out["programs"] = []
        for j, p in enumerate(est.programs_):
            entry = {"structure": p.key(), "balance": float(min(bits[:, j].mean(), 1 - bits[:, j].mean()))}
            for f in factors:
                entry[f"agreement_{f}"] = agreement(bits[:, j], test.label_column(f))
            out["programs"].append(entry)
    else:
        from sklearn.cluster import KMeans

        k = n_clusters or cfg.kmeans_clusters or len(np.unique(labels))
        clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(z)
        out["model"] = dict(cluster_metrics(labels, clusters), method=f"k-means ({k}) on the neural latent")
    if factors and z.shape[1]:
        out["neural_latent_readout"] = {f: linear_readout(z, test.label_column(f)) for f in factors}
        out["neural_latent_knn_readout"] = {f: knn_readout(z, test.label_column(f)) for f in factors}
    oracle = oracle_metrics(test, cfg.labels)
    if oracle is not None:
        out["oracle"] = oracle
    return out
