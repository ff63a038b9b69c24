"""SLEAP analysis HDF5 (``sleap-convert --format analysis``), read with h5py.

Datasets as h5py returns them (SLEAP writes them column-major for MATLAB):
``tracks`` (n_tracks, 2, n_nodes, n_frames), ``node_names`` (n_nodes,), optional
``track_names`` (n_tracks,), ``point_scores`` (n_tracks, n_nodes, n_frames) and
``track_occupancy`` ((n_frames, n_tracks), or transposed in some SLEAP versions: the
orientation is taken from the dimensions). Frames where a track is not occupied are NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsprog.data.loaders._common import FormatError, decode_str, open_h5
from nsprog.data.recording import Recording

__all__ = ["load_sleap_h5", "detect_sleap_h5"]


def detect_sleap_h5(path: Path) -> bool:
    try:
        with open_h5(path) as f:
            return "tracks" in f and "node_names" in f
    except FormatError:
        return False


def load_sleap_h5(path: str | Path, fps: float | None = None) -> list[Recording]:
    """Read a SLEAP analysis file into one recording (individuals = tracks, keypoints = nodes)."""
    path = Path(path)
    with open_h5(path, "SLEAP analysis") as f:
        missing = [k for k in ("tracks", "node_names") if k not in f]
        if missing:
            raise FormatError(path, f"missing dataset(s) {missing}; a SLEAP analysis file has tracks and node_names")
        tracks = f["tracks"][()]
        nodes = [decode_str(n) for n in f["node_names"][()]]
        names = [decode_str(n) for n in f["track_names"][()]] if "track_names" in f else None
        scores = f["point_scores"][()] if "point_scores" in f else None
        occ = f["track_occupancy"][()] if "track_occupancy" in f else None
    if tracks.ndim != 4 or tracks.shape[1] != 2 or tracks.shape[2] != len(nodes):
        raise FormatError(
            path,
            f"field 'tracks' has shape {tracks.shape}; expected (n_tracks, 2, n_nodes={len(nodes)}, n_frames)",
        )
    n_tracks, _, n_nodes, n_frames = tracks.shape
    pos = tracks.transpose(3, 0, 2, 1).astype(np.float32)  # (frames, tracks, nodes, xy)
    conf = None
    if scores is not None:
        if scores.shape != (n_tracks, n_nodes, n_frames):
            raise FormatError(
                path, f"field 'point_scores' has shape {scores.shape}; expected ({n_tracks}, {n_nodes}, {n_frames})"
            )
        conf = scores.transpose(2, 0, 1)
    if occ is not None:
        if occ.shape == (n_frames, n_tracks):
            o = occ.astype(bool)
        elif occ.shape == (n_tracks, n_frames):
            o = occ.T.astype(bool)
        else:
            raise FormatError(
                path, f"field 'track_occupancy' has shape {occ.shape}; expected ({n_frames}, {n_tracks}) or transposed"
            )
        pos[~o] = np.nan
    if names is not None and (len(names) != n_tracks or len(set(names)) != n_tracks):
        names = None
    if names is None:
        names = [f"track_{i}" for i in range(n_tracks)]
    return [
        Recording.from_arrays(
            pos, conf, keypoint_names=nodes, individual_names=names, fps=fps, source=str(path), format="sleap_h5"
        )
    ]
