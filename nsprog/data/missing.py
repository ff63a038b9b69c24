"""Missing keypoints: mark, interpolate short gaps, flag the frames that stay broken.

Real tracking data has gaps: keypoints below a confidence threshold, keypoints at the
tracker's padding value (0, 0), players off the court. The rule here is that no NaN ever
reaches a model silently:

1. :func:`mark_missing` turns low-confidence and exactly-(0, 0) keypoints into NaN.
2. :func:`interpolate_gaps` fills interior gaps of at most ``max_gap`` frames linearly,
   vectorised over all series at once (no loop over frames). Gaps at the start or end of a
   recording have only one anchor and are never filled.
3. :func:`repair_arrays` runs both on a recording's arrays and returns the filled positions
   and a ``valid`` mask that is False on every frame that still misses a value; windows
   containing such frames are dropped when windows are cut. Counts are logged to the
   ``nsprog`` logger and returned in a :class:`RepairReport`.
   (:func:`nsprog.data.recording.repair_missing` applies it to a ``Recording``.)

Arrays in, arrays out: this module knows nothing of the recording type.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["RepairReport", "mark_missing", "interpolate_gaps", "repair_arrays"]

log = logging.getLogger("nsprog")


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair_missing` did to one recording (all counts are exact)."""

    source: str
    n_frames: int
    low_confidence: int = 0
    """keypoints (individual x keypoint x frame) set to NaN for confidence below the threshold"""
    zero: int = 0
    """keypoints set to NaN because they sat exactly at (0, 0)"""
    values_interpolated: int = 0
    """keypoints filled by linear interpolation"""
    frames_repaired: int = 0
    """frames in which at least one keypoint was filled"""
    frames_invalid: int = 0
    """frames that still miss a keypoint (or were invalid already) after repair"""
    max_gap: int = 0
    worst: list = field(default_factory=list)
    """up to 5 (individual, keypoint, fraction of frames missing after repair), worst first"""

    def to_dict(self) -> dict:
        return asdict(self)


def mark_missing(
    position: np.ndarray,
    confidence: np.ndarray | None = None,
    min_confidence: float | None = None,
    zero_as_missing: bool = True,
) -> tuple[np.ndarray, int, int]:
    """Copy of ``position [T, I, K, 2]`` with low-confidence / (0, 0) keypoints set to NaN.

    A confidence of NaN (unknown) never triggers the threshold. Returns the new array and
    the number of keypoints masked for low confidence and for sitting at (0, 0).
    """
    pos = np.array(position, dtype=np.float32, copy=True)
    missing_before = ~np.isfinite(pos).all(axis=-1)
    n_low = n_zero = 0
    if min_confidence is not None and confidence is not None:
        conf = np.asarray(confidence)
        low = (conf < float(min_confidence)) & ~missing_before  # NaN < t is False
        n_low = int(low.sum())
        pos[low] = np.nan
    if zero_as_missing:
        zero = (pos[..., 0] == 0) & (pos[..., 1] == 0)
        n_zero = int(zero.sum())
        pos[zero] = np.nan
    return pos, n_low, n_zero


def interpolate_gaps(values: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly fill interior NaN runs of at most ``max_gap`` frames along axis 0.

    ``values`` has shape ``[T, ...]``; every trailing index is an independent series.
    Returns ``(filled, was_filled)`` with ``was_filled`` a bool array of the same shape.
    Runs touching the first or last frame, and runs longer than ``max_gap``, stay NaN.
    """
    x = np.asarray(values, dtype=np.float32)
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0 frames, got {max_gap}")
    shape = x.shape
    n = shape[0]
    flat = x.reshape(n, -1)
    ok = np.isfinite(flat)
    filled_mask = np.zeros_like(ok)
    if max_gap == 0 or n < 3 or ok.all():
        return x.copy(), filled_mask.reshape(shape)
    t = np.arange(n)[:, None]
    prev = np.maximum.accumulate(np.where(ok, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(ok, t, n)[::-1], axis=0)[::-1]
    gap = nxt - prev - 1
    fill = ~ok & (prev >= 0) & (nxt < n) & (gap <= max_gap)
    out = flat.copy()
    if fill.any():
        p = np.clip(prev, 0, n - 1)
        q = np.clip(nxt, 0, n - 1)
        pv = np.take_along_axis(flat, p, axis=0)
        qv = np.take_along_axis(flat, q, axis=0)
        w = (t - p) / np.maximum(q - p, 1)
        out = np.where(fill, pv + w.astype(np.float32) * (qv - pv), flat).astype(np.float32)
        filled_mask = fill
    return out.reshape(shape), filled_mask.reshape(shape)


def repair_arrays(
    position: np.ndarray,
    confidence: np.ndarray | None,
    valid: np.ndarray,
    individual_names: Sequence[str],
    keypoint_names: Sequence[str],
    source: str = "",
    min_confidence: float | None = None,
    zero_as_missing: bool = True,
    max_gap: int = 5,
    log_level: int = logging.INFO,
) -> tuple[np.ndarray, np.ndarray, RepairReport]:
    """Mark, interpolate and flag missing keypoints of one recording's arrays.

    Parameters
    ----------
    position : array ``[T, I, K, 2]``; confidence : ``[T, I, K]`` or None; valid : ``[T]`` bool
    individual_names, keypoint_names : names for the report
    min_confidence : float, optional
        Keypoints with confidence strictly below this become NaN (None: no threshold).
    zero_as_missing : bool, default True
        Keypoints exactly at (0, 0) become NaN (the padding value of many trackers).
    max_gap : int, default 5
        Longest run of missing frames filled by linear interpolation; 0 disables filling.

    Returns
    -------
    (filled position, valid, RepairReport)
        ``valid[t]`` is False for every frame that still misses a keypoint (or was invalid before).
    """
    n_frames = position.shape[0]
    pos, n_low, n_zero = mark_missing(position, confidence, min_confidence, zero_as_missing)
    # interpolate x and y together: a keypoint is either present (both finite) or not
    pos[~np.isfinite(pos).all(axis=-1)] = np.nan
    filled, was_filled = interpolate_gaps(pos, max_gap)
    n_values = int(was_filled[..., 0].sum())
    frames_repaired = int(was_filled.reshape(n_frames, -1).any(axis=1).sum())
    still_missing = ~np.isfinite(filled).all(axis=-1)  # [T, I, K]
    valid = np.asarray(valid, bool) & ~still_missing.reshape(n_frames, -1).any(axis=1)
    frac = still_missing.mean(axis=0)  # [I, K]
    order = np.argsort(-frac, axis=None)[:5]
    worst = [
        (individual_names[i], keypoint_names[k], round(float(frac[i, k]), 4))
        for i, k in zip(*np.unravel_index(order, frac.shape))
        if frac[i, k] > 0
    ]
    report = RepairReport(
        source=source,
        n_frames=n_frames,
        low_confidence=n_low,
        zero=n_zero,
        values_interpolated=n_values,
        frames_repaired=frames_repaired,
        frames_invalid=int((~valid).sum()),
        max_gap=int(max_gap),
        worst=worst,
    )
    thr = "no confidence threshold" if min_confidence is None else f"confidence < {min_confidence}"
    log.log(
        log_level,
        "%s: %d keypoints missing by %s, %d at (0, 0); interpolated %d keypoints in %d frames "
        "(gaps <= %d frames); %d of %d frames still miss a keypoint",
        source, n_low, thr, n_zero, n_values, frames_repaired, max_gap, report.frames_invalid, n_frames,
    )
    return filled, valid, report
