"""Scores of per-behaviour binary classifiers: average precision (as scikit-learn computes
it), F1 of the positive class, the error rate at the decision threshold, and the share of
the test items given the most frequent predicted class (the one-class flag).

Every function takes ``y [N]`` in {0, 1} and scores or predictions ``[N]``; ``behaviour_scores``
does a matrix ``[N, B]`` column by column.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "f1_positive", "behaviour_scores", "ONE_CLASS_SHARE"]

#: a classifier that gives one class to more than this share of the test items is flagged
ONE_CLASS_SHARE = 0.95


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve, ``sum_n (R_n - R_{n-1}) P_n`` over the
    distinct score thresholds in decreasing order (scikit-learn's ``average_precision_score``).
    Needs at least one positive."""
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels have shape {y.shape} but scores {s.shape}; expected one score per item")
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("average precision is undefined without a positive item")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last item of each run of equal scores
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_positive(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 of the positive class (0 when there is no true and no predicted positive)."""
    y = np.asarray(y).astype(bool).ravel()
    p = np.asarray(pred).astype(bool).ravel()
    tp = int(np.sum(y & p))
    denom = 2 * tp + int(np.sum(~y & p)) + int(np.sum(y & ~p))
    return 2.0 * tp / denom if denom else 0.0


def behaviour_scores(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> list[dict]:
    """Per column of ``y [N, B]`` / ``proba [N, B]``: ``ap``, ``f1``, ``error`` (share of items
    misclassified at ``threshold``), ``pred_share`` (share of the most frequent predicted
    class), ``pred_class``, ``true_share`` (the test share of that class) and ``one_class``
    (``pred_share > ONE_CLASS_SHARE``)."""
    y = np.asarray(y)
    proba = np.asarray(proba)
    if y.shape != proba.shape or y.ndim != 2:
        raise ValueError(f"labels {y.shape} and probabilities {proba.shape} must both be [items, behaviours]")
    out = []
    for b in range(y.shape[1]):
        yb, pb = y[:, b].astype(np.int64), proba[:, b]
        pred = pb > threshold
        share1 = float(pred.mean()) if len(pred) else 0.0
        cls = int(share1 >= 0.5)
        share = share1 if cls else 1.0 - share1
        out.append({
            "ap": average_precision(yb, pb) if yb.any() else float("nan"),
            "f1": f1_positive(yb, pred),
            "error": float(np.mean(pred != yb.astype(bool))),
            "pred_share": share,
            "pred_class": cls,
            "true_share": float(np.mean(yb == cls)),
            "one_class": bool(share > ONE_CLASS_SHARE),
        })
    return out
