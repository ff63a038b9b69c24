"""Cutting fixed-length windows out of long recordings.

A recording here is a frame array ``[n_frames, D]`` with optional per-frame labels; a
window of ``length`` frames starts every ``stride`` frames. Per-frame labels are reduced to
one label per window by the centre frame (the CalMS21 protocol), the majority label (ties go
to the smallest label id) or the last frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from nsprog.data.trajectories import Trajectories

__all__ = ["window_starts", "reduce_frame_labels", "cut_windows", "REDUCTIONS"]

REDUCTIONS = ("centre", "majority", "last")
Reduction = Literal["centre", "majority", "last"]


def window_starts(n_frames: int, length: int, stride: int) -> np.ndarray:
    """First frame of every complete window: 0, stride, 2*stride, ... while start + length <= n_frames."""
    if length < 2:
        raise ValueError(f"window length must be >= 2 frames, got {length}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if n_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - length + 1, stride, dtype=np.int64)


def reduce_frame_labels(
    frame_labels: np.ndarray, starts: np.ndarray, length: int, reduce: Reduction = "centre"
) -> np.ndarray:
    """One label per window from per-frame labels.

    ``centre`` takes frame ``start + length // 2``; ``last`` takes ``start + length - 1``;
    ``majority`` takes the most frequent label in the window (smallest id on ties).
    Negative labels (unlabelled frames) are ignored by ``majority`` unless the whole window
    is unlabelled, in which case the window gets -1.
    """
    frame_labels = np.asarray(frame_labels)
    starts = np.asarray(starts, dtype=np.int64)
    if reduce == "centre":
        return frame_labels[starts + length // 2].astype(np.int64)
    if reduce == "last":
        return frame_labels[starts + length - 1].astype(np.int64)
    if reduce == "majority":
        if len(starts) == 0:
            return np.zeros(0, dtype=np.int64)
        idx = starts[:, None] + np.arange(length)[None, :]
        win = frame_labels[idx].astype(np.int64)
        n_classes = int(max(win.max(), 0)) + 1
        valid = win >= 0
        onehot = np.zeros((len(starts), n_classes), dtype=np.int64)
        rows = np.broadcast_to(np.arange(len(starts))[:, None], win.shape)
        np.add.at(onehot, (rows[valid], win[valid]), 1)
        out = onehot.argmax(axis=1)  # argmax returns the first maximum: smallest id on ties
        out[~valid.any(axis=1)] = -1
        return out
    raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {reduce!r}")


def cut_windows(
    frames: np.ndarray,
    length: int,
    stride: int = 1,
    frame_labels: np.ndarray | None = None,
    reduce: Reduction = "centre",
    group: int = 0,
    valid_frames: np.ndarray | None = None,
    label_names=None,
    feature_names=None,
    metadata: dict | None = None,
) -> Trajectories:
    """Windows of ``length`` frames every ``stride`` frames from one recording.

    ``valid_frames`` (bool per frame) drops every window that contains an invalid frame
    (e.g. a gap too long to interpolate). Windows keep their ``starts`` and ``group`` so
    that time-block and group splits can be made without leakage.
    """
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ValueError(f"frames has shape {frames.shape}; expected (n_frames, D)")
    n = frames.shape[0]
    starts = window_starts(n, length, stride)
    if frame_labels is not None:
        frame_labels = np.asarray(frame_labels)
        if frame_labels.shape != (n,):
            raise ValueError(f"frame_labels has shape {frame_labels.shape}; expected ({n},), one per frame")
    if valid_frames is not None:
        valid_frames = np.asarray(valid_frames, dtype=bool)
        if valid_frames.shape != (n,):
            raise ValueError(f"valid_frames has shape {valid_frames.shape}; expected ({n},)")
        bad = np.concatenate([[0], np.cumsum(~valid_frames)])
        ok = (bad[starts + length] - bad[starts]) == 0
        starts = starts[ok]
    if len(starts) == 0:
        raise ValueError(
            f"no complete window of {length} frames (stride {stride}) fits in a recording of {n} frames"
            + (" with the given valid_frames mask" if valid_frames is not None else "")
        )
    idx = starts[:, None] + np.arange(length)[None, :]
    states = frames[idx]
    labels = None if frame_labels is None else reduce_frame_labels(frame_labels, starts, length, reduce)
    return Trajectories(
        states=states,
        labels=labels,
        label_names=label_names,
        groups=np.full(len(starts), group, dtype=np.int64),
        starts=starts,
        feature_names=feature_names,
        metadata=dict(metadata or {}, window_length=length, stride=stride, label_reduction=reduce),
    )
