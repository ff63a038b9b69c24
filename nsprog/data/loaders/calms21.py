"""CalMS21 (JSON, and the ``.npy`` pickles) and MABe ``.npy`` pickles.

CalMS21 JSON (the official layout)::

    {group: {sequence: {"keypoints": (T, 2 mice, 2 [x, y], 7 keypoints),
                        "scores": (T, 2, 7),
                        "annotations": (T,)            # task 1-3 files, per-frame ids
                        "metadata": {"vocab": {name: id}, ...}}}}

Every sequence becomes one recording named ``<group>/<sequence>``; mouse 0 is the
resident. Keypoints: nose, ear_left, ear_right, neck, hip_left, hip_right, tail_base;
30 Hz. The vocabulary may be a mapping name -> id or a list.

``.npy`` files of CalMS21 and MABe are **pickles**: unpickling runs code chosen by
whoever wrote the file, so they are read only with ``trusted=True``. Two layouts are
recognised: the CalMS21 dict above, and MABe's
``{"vocabulary": [...], "sequences": {id: {"keypoints": (T, mice, keypoints, 2),
"annotations": (n_tasks, T)}}}`` (each annotation row becomes a ``frame_data`` column named
after its vocabulary entry).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nsprog.data.loaders._common import FormatError, read_head
from nsprog.data.recording import Recording

__all__ = [
    "CALMS21_KEYPOINTS",
    "CALMS21_MICE",
    "load_calms21_json",
    "load_pickle_npy",
    "detect_calms21_json",
    "detect_pickle_npy",
    "calms21_sequences",
]

log = logging.getLogger("nsprog")

CALMS21_KEYPOINTS = ("nose", "ear_left", "ear_right", "neck", "hip_left", "hip_right", "tail_base")
CALMS21_MICE = ("resident", "intruder")
CALMS21_FPS = 30.0


def detect_calms21_json(path: Path) -> bool:
    head = read_head(path, 4096)
    return head.lstrip().startswith("{") and '"keypoints"' in head and '"moments"' not in head


def _vocab(meta: Any) -> list[str] | None:
    if not isinstance(meta, dict):
        return None
    v = meta.get("vocab", meta.get("vocabulary"))
    if isinstance(v, dict):
        ids = sorted(v.items(), key=lambda kv: int(kv[1]))
        out = [""] * (max(int(i) for _, i in ids) + 1 if ids else 0)
        for name, i in ids:
            out[int(i)] = str(name)
        return out
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return None


def calms21_sequences(data: Any, path: Path, fps: float | None) -> list[Recording]:
    """Recordings from the CalMS21 nested dict ``{group: {sequence: {...}}}``."""
    if not isinstance(data, dict) or not data:
        raise FormatError(path, "expected a non-empty mapping {group: {sequence: {keypoints, ...}}}")
    out = []
    for gname, group in data.items():
        if not isinstance(group, dict):
            raise FormatError(path, f"group {gname!r} is a {type(group).__name__}; expected a mapping of sequences")
        for sname, seq in group.items():
            where = f"sequence {gname}/{sname}"
            if not isinstance(seq, dict) or "keypoints" not in seq:
                keys = sorted(seq) if isinstance(seq, dict) else type(seq).__name__
                raise FormatError(path, f"{where}: field 'keypoints' is missing (found {keys})")
            try:
                kp = np.asarray(seq["keypoints"], dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise FormatError(path, f"{where}: field 'keypoints' is not a numeric array ({exc})") from None
            if kp.ndim != 4 or kp.shape[2] != 2:
                raise FormatError(
                    path, f"{where}: field 'keypoints' has shape {kp.shape}; expected (frames, mice, 2 [x, y], keypoints)"
                )
            pos = kp.transpose(0, 1, 3, 2)  # (T, mice, kp, xy)
            t, n_mice, n_kp, _ = pos.shape
            conf = None
            if "scores" in seq:
                conf = np.asarray(seq["scores"], dtype=np.float32)
                if conf.shape != (t, n_mice, n_kp):
                    raise FormatError(path, f"{where}: field 'scores' has shape {conf.shape}; expected ({t}, {n_mice}, {n_kp})")
            labels = label_names = None
            if "annotations" in seq and seq["annotations"] is not None:
                ann = np.asarray(seq["annotations"])
                if ann.shape != (t,):
                    raise FormatError(path, f"{where}: field 'annotations' has shape {ann.shape}; expected ({t},)")
                labels = ann.astype(np.int64)
                label_names = _vocab(seq.get("metadata"))
                if label_names is not None and labels.size and labels.max() >= len(label_names):
                    raise FormatError(
                        path, f"{where}: field 'annotations' goes up to {int(labels.max())} but the vocabulary has "
                        f"{len(label_names)} entries {label_names}"
                    )
            kp_names = CALMS21_KEYPOINTS if n_kp == len(CALMS21_KEYPOINTS) else None
            mice = CALMS21_MICE if n_mice == 2 else None
            out.append(
                Recording.from_arrays(
                    pos, conf, keypoint_names=kp_names, individual_names=mice, fps=fps, labels=labels,
                    label_names=label_names, source=str(path), name=f"{gname}/{sname}", format="calms21_json",
                    metadata={"group": str(gname), "sequence": str(sname)},
                )
            )
    if not out:
        raise FormatError(path, "no sequences found")
    return out


def load_calms21_json(path: str | Path, fps: float | None = CALMS21_FPS) -> list[Recording]:
    """One recording per sequence of a CalMS21 JSON file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
    return calms21_sequences(data, path, fps)


def detect_pickle_npy(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = (
                np.lib.format.read_array_header_1_0(fh) if version == (1, 0) else np.lib.format.read_array_header_2_0(fh)
            )
    except (ValueError, OSError):
        return False
    return header[2].hasobject


def load_pickle_npy(path: str | Path, trusted: bool = False, fps: float | None = CALMS21_FPS) -> list[Recording]:
    """CalMS21 / MABe ``.npy`` pickles; refuses to unpickle unless ``trusted=True``."""
    path = Path(path)
    if not trusted:
        raise FormatError(
            path,
            "is a pickle (.npy holding Python objects); unpickling can run arbitrary code. Load it only if "
            "you trust its origin, with trusted=True (CLI: --trusted), or use the CalMS21 JSON files instead",
        )
    try:
        obj = np.load(path, allow_pickle=True)
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(path, f"not a readable .npy file ({exc})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if isinstance(obj, dict) and "sequences" in obj:
        return _mabe_sequences(obj, path, fps)
    if isinstance(obj, dict):
        recs = calms21_sequences(obj, path, fps)
        return [replace(r, format="pickle_npy") for r in recs]
    raise FormatError(path, f"holds a {type(obj).__name__}; expected the CalMS21 or MABe dict layout")


def _mabe_sequences(obj: dict, path: Path, fps: float | None) -> list[Recording]:
    vocab = [str(v) for v in obj.get("vocabulary", [])] if not isinstance(obj.get("vocabulary"), dict) else list(obj["vocabulary"])
    out = []
    for sid, seq in obj["sequences"].items():
        where = f"sequence {sid}"
        if not isinstance(seq, dict) or "keypoints" not in seq:
            raise FormatError(path, f"{where}: field 'keypoints' is missing")
        kp = np.asarray(seq["keypoints"], dtype=np.float32)
        if kp.ndim != 4 or kp.shape[-1] != 2:
            raise FormatError(path, f"{where}: field 'keypoints' has shape {kp.shape}; expected (frames, mice, keypoints, 2)")
        frame_data = {}
        ann = seq.get("annotations")
        if ann is not None:
            ann = np.asarray(ann)
            if ann.ndim == 1:
                ann = ann[None]
            if ann.shape[-1] != kp.shape[0]:
                raise FormatError(path, f"{where}: field 'annotations' has shape {ann.shape}; expected (tasks, {kp.shape[0]})")
            for i, row in enumerate(ann):
                name = vocab[i] if i < len(vocab) else f"task_{i}"
                frame_data[name] = np.asarray(row, dtype=np.float64)
        out.append(
            Recording.from_arrays(
                kp, fps=fps, frame_data=frame_data, source=str(path), name=str(sid), format="pickle_npy",
                individual_names=[f"mouse_{i}" for i in range(kp.shape[1])],
            )
        )
    if not out:
        raise FormatError(path, "no sequences found")
    return out
