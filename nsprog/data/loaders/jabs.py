"""JABS pose estimation HDF5 (``*_pose_est_v*.h5``), read with h5py.

``poseest/points`` is uint16 (n_frames, n_instances, 12, 2) holding **(y, x)** pixel
positions (the JABS file-format convention); this loader swaps them so that
``position[..., 0]`` is x and ``position[..., 1]`` is y like every other format.
``poseest/confidence`` (n_frames, n_instances, 12) is 0 for padding and for keypoints that
were not found: those keypoints, and instances at or beyond ``poseest/instance_count``,
become NaN. Single-mouse v2 files ((n_frames, 12, 2)) get one individual.

Individuals: in v3 files an instance *slot* is not an identity (slots swap tracks from
frame to frame). ``identity="slot"`` (default) keeps the slots as stored, named
``instance_0 ...``; ``identity="track"`` regroups the points by ``instance_track_id`` into
one individual per track, longest track first (``max_individuals`` keeps the longest
ones). Keypoint names are JABS's own (NOSE, LEFT_EAR, ... TIP_TAIL). JABS videos run at
30 fps, the default ``fps``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nsprog.data.loaders._common import FormatError, open_h5
from nsprog.data.recording import Recording

__all__ = ["JABS_KEYPOINTS", "load_jabs_h5", "detect_jabs_h5"]

log = logging.getLogger("nsprog")

JABS_KEYPOINTS = (
    "NOSE", "LEFT_EAR", "RIGHT_EAR", "BASE_NECK", "LEFT_FRONT_PAW", "RIGHT_FRONT_PAW",
    "CENTER_SPINE", "LEFT_REAR_PAW", "RIGHT_REAR_PAW", "BASE_TAIL", "MID_TAIL", "TIP_TAIL",
)


def detect_jabs_h5(path: Path) -> bool:
    try:
        with open_h5(path) as f:
            return "poseest/points" in f
    except FormatError:
        return False


def load_jabs_h5(
    path: str | Path, fps: float | None = 30.0, identity: str = "slot", max_individuals: int | None = None
) -> list[Recording]:
    """Read a JABS pose file (see the module docstring for ``identity``)."""
    path = Path(path)
    if identity not in ("slot", "track"):
        raise ValueError(f"identity must be 'slot' or 'track'; got {identity!r}")
    with open_h5(path, "JABS pose") as f:
        if "poseest/points" not in f:
            raise FormatError(path, "no dataset 'poseest/points'; not a JABS pose file")
        g = f["poseest"]
        points = g["points"][()]
        conf = g["confidence"][()].astype(np.float32) if "confidence" in g else None
        count = g["instance_count"][()] if "instance_count" in g else None
        track = g["instance_track_id"][()] if "instance_track_id" in g else None
        version = [int(v) for v in np.ravel(g.attrs.get("version", []))]
    if points.ndim == 3:
        points = points[:, None]
        conf = None if conf is None else conf[:, None]
    if points.ndim != 4 or points.shape[-1] != 2:
        raise FormatError(path, f"field 'poseest/points' has shape {points.shape}; expected (frames, instances, keypoints, 2)")
    t, n_inst, n_kp, _ = points.shape
    if conf is not None and conf.shape != (t, n_inst, n_kp):
        raise FormatError(path, f"field 'poseest/confidence' has shape {conf.shape}; expected ({t}, {n_inst}, {n_kp})")
    pos = points[..., ::-1].astype(np.float32)  # (y, x) -> (x, y)
    missing = np.zeros((t, n_inst, n_kp), dtype=bool)
    if conf is not None:
        missing |= conf <= 0
    if count is not None:
        missing |= (np.arange(n_inst)[None, :] >= count[:, None])[:, :, None]
    pos[missing] = np.nan
    kp_names = list(JABS_KEYPOINTS) if n_kp == len(JABS_KEYPOINTS) else [f"keypoint_{i}" for i in range(n_kp)]
    names = [f"instance_{i}" for i in range(n_inst)]
    meta = {"jabs_version": version, "identity": identity}
    if identity == "track":
        if track is None:
            raise FormatError(path, "identity='track' needs the dataset 'poseest/instance_track_id'")
        occupied = ~missing.all(axis=2)  # (t, inst)
        ids, lengths = np.unique(track[occupied], return_counts=True)
        order = ids[np.argsort(-lengths, kind="stable")]
        if max_individuals is not None:
            order = order[:max_individuals]
        new_pos = np.full((t, len(order), n_kp, 2), np.nan, dtype=np.float32)
        new_conf = np.full((t, len(order), n_kp), np.nan, dtype=np.float32)
        fr, sl = np.nonzero(occupied)
        ids_sorted = np.sort(order)
        rank_sorted = np.argsort(order)  # ids_sorted[j] == order[rank_sorted[j]]
        tid = track[fr, sl]
        at = np.clip(np.searchsorted(ids_sorted, tid), 0, max(len(ids_sorted) - 1, 0))
        if len(order):
            tgt = np.where(ids_sorted[at] == tid, rank_sorted[at], -1)
        else:
            tgt = np.full(len(tid), -1)
        keep = tgt >= 0
        new_pos[fr[keep], tgt[keep]] = pos[fr[keep], sl[keep]]
        if conf is not None:
            new_conf[fr[keep], tgt[keep]] = conf[fr[keep], sl[keep]]
        pos, conf = new_pos, new_conf
        names = [f"track_{int(k)}" for k in order]
        log.info("%s: %d tracks regrouped from %d instance slots", path, len(order), n_inst)
    return [
        Recording.from_arrays(
            pos, conf, keypoint_names=kp_names, individual_names=names, fps=fps, source=str(path),
            format="jabs_h5", metadata=meta,
        )
    ]
