"""The generic ``.npz`` input: any tracker's output as plain arrays.

Keys (only ``position`` is required; string arrays must be plain unicode arrays, the file
is read with ``allow_pickle=False``):

=====================  ==========================================================
``position``           float (n_frames, n_individuals, n_keypoints, 2), NaN = missing;
                       (n_frames, n_keypoints, 2) for one individual
``confidence``         float (n_frames, n_individuals, n_keypoints)
``keypoint_names``     str (n_keypoints,)
``individual_names``   str (n_individuals,)
``individual_groups``  str (n_individuals,): team / group of each individual
``fps``                scalar frames per second
``labels``             int (n_frames,), -1 = unlabelled
``label_names``        str (n_labels,)
``valid``              bool (n_frames,): False marks frames no window may contain
``frame_<name>``       number (n_frames,): extra per-frame column ``<name>``
                       (e.g. ``frame_offense``, ``frame_segment``, ``frame_game_clock``)
=====================  ==========================================================
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nsprog.data.loaders._common import FormatError
from nsprog.data.recording import Recording
from nsprog.utils import atomic_write

__all__ = ["ARRAY_KEYS", "load_arrays", "save_arrays", "detect_arrays"]

ARRAY_KEYS = (
    "position",
    "confidence",
    "keypoint_names",
    "individual_names",
    "individual_groups",
    "fps",
    "labels",
    "label_names",
    "valid",
)


def detect_arrays(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "position.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def load_arrays(path: str | Path, fps: float | None = None) -> list[Recording]:
    """Read the documented ``.npz`` keys into one recording (``fps=`` overrides the file's)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise FormatError(path, f"not a readable .npz file ({exc})") from None
    with data:
        keys = list(data.files)
        unknown = [k for k in keys if k not in ARRAY_KEYS and not k.startswith("frame_")]
        problems = []
        if "position" not in keys:
            problems.append("missing required key 'position' (float array of shape (frames, individuals, keypoints, 2))")
        if unknown:
            problems.append(
                f"unknown key(s) {unknown}; documented keys: {', '.join(ARRAY_KEYS)} and frame_<name> "
                "for per-frame columns"
            )
        if problems:
            raise FormatError(path, "; ".join(problems))
        arrays = {}
        for k in keys:
            try:
                arrays[k] = data[k]
            except ValueError as exc:
                raise FormatError(
                    path, f"key {k!r} holds Python objects ({exc}); store names as unicode string arrays"
                ) from None
    file_fps = arrays.get("fps")
    if fps is None and file_fps is not None:
        fps = float(np.asarray(file_fps).ravel()[0]) if np.asarray(file_fps).size else None
    return [
        Recording.from_arrays(
            arrays["position"],
            arrays.get("confidence"),
            keypoint_names=arrays.get("keypoint_names"),
            individual_names=arrays.get("individual_names"),
            individual_groups=arrays.get("individual_groups"),
            fps=fps,
            labels=arrays.get("labels"),
            label_names=arrays.get("label_names"),
            frame_data={k[len("frame_"):]: v for k, v in arrays.items() if k.startswith("frame_")},
            valid=arrays.get("valid"),
            source=str(path),
            format="arrays",
        )
    ]


def save_arrays(rec: Recording, path: str | Path) -> Path:
    """Write a recording with the documented keys (the inverse of :func:`load_arrays`)."""
    arrays = {
        "position": rec.position,
        "confidence": rec.confidence,
        "keypoint_names": np.asarray(rec.keypoint_names, dtype=str),
        "individual_names": np.asarray(rec.individual_names, dtype=str),
        "individual_groups": np.asarray(rec.individual_groups, dtype=str),
        "valid": rec.valid,
    }
    if rec.fps is not None:
        arrays["fps"] = np.asarray(rec.fps)
    if rec.labels is not None:
        arrays["labels"] = rec.labels
        arrays["label_names"] = np.asarray(rec.label_names, dtype=str)
    for k, v in rec.frame_data.items():
        arrays[f"frame_{k}"] = v

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, write)
