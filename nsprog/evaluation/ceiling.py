"""The supervised-program ceiling: the program of a DSL that best predicts the human labels,
found by ``nsprog search`` (:class:`~nsprog.search.ProgramSearch`) on the training windows'
labels (candidates scored on the validation windows) and applied to the evaluation windows.
Its predicted classes, read as clusters, show the best a program of this DSL can do against
those labels; the oracle (:mod:`nsprog.evaluation.oracle`) is the same idea where the
generating programs are known."""

from __future__ import annotations

import numpy as np

from nsprog.data.trajectories import Trajectories
from nsprog.evaluation.metrics import cluster_metrics

__all__ = ["labelled_mask", "supervised_ceiling"]


def labelled_mask(traj: Trajectories, labels: str = "label") -> np.ndarray:
    """Windows that carry a label (``-1`` marks unlabelled windows)."""
    return np.asarray(traj.label_column(labels)) >= 0


def supervised_ceiling(train: Trajectories, val: Trajectories, test: Trajectories, dsl, labels: str = "label",
                       settings=None, seed: int = 0, device: str = "cpu", threads: int | None = 1) -> dict:
    """Search a program on ``train``'s ``labels`` (unlabelled windows left out), score its
    predictions on ``test`` as clusters. Returns the cluster metrics plus the program, its
    validation weighted F1 and the candidates trained."""
    from nsprog.dsl.definition import load_dsl
    from nsprog.features.pipeline import FeaturePipeline
    from nsprog.search.synthesis import ProgramSearch

    dsl = load_dsl(dsl)
    pipe = FeaturePipeline.for_dsl(dsl).fit(train)
    keep = {k: labelled_mask(t, labels) for k, t in (("train", train), ("val", val), ("test", test))}
    for k, m in keep.items():
        if not m.any():
            raise ValueError(f"supervised ceiling: the {k} windows have no labelled window in column {labels!r}")
    x = {k: pipe.transform(t.subset(keep[k])) for k, t in (("train", train), ("val", val), ("test", test))}
    y = {k: np.asarray(t.label_column(labels))[keep[k]] for k, t in (("train", train), ("val", val), ("test", test))}
    seen = np.unique(y["train"])
    val_ok = np.isin(y["val"], seen)  # a class the training windows lack cannot be predicted or scored on val
    est = ProgramSearch(dsl, settings, seed=seed, device=device, threads=threads)
    est.fit(x["train"], y["train"], x["val"][val_ok], y["val"][val_ok])
    pred = est.predict(x["test"])
    out = cluster_metrics(y["test"], pred)
    out.update(program=est.program_.key(), val_weighted_f1=float(est.val_f1_), candidates=int(est.n_candidates_))
    return out
