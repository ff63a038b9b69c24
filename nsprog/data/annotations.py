"""Behaviour annotations: bout tables and per-frame label files -> per-frame labels.

Two layouts are read:

* **Bout tables** (CSV): one row per bout with a start and an end time in seconds and a
  behaviour name. Column names are matched case-insensitively: start ``from`` / ``start``
  / ``start_s``, end ``to`` / ``stop`` / ``end`` / ``end_s``, behaviour ``type`` /
  ``behavior`` / ``behaviour`` / ``label``. Other columns are ignored, so pandas-saved
  tables with index columns work (e.g. the open-field annotation files). A bout covers
  the frames ``f`` with ``from <= f / fps <= to``.
* **Per-frame labels**: ``.npy`` integer arrays (loaded with ``allow_pickle=False``), or a
  CSV / text file with one label per line (integers or names; an optional header line).

Frames outside every bout get the background label 0 (``"none"``). Where bouts overlap
the later row wins; the number of such frames is logged, as are bouts beyond the end of
the recording. When the frame rate is unknown, 25 fps is assumed and the assumption is
logged (the open-field annotation files do not state their rate).
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["DEFAULT_ANNOTATION_FPS", "bouts_to_frames", "load_annotations", "read_bout_table"]

log = logging.getLogger("nsprog")

DEFAULT_ANNOTATION_FPS = 25.0
START_COLUMNS = ("from", "start", "start_s", "start_time", "onset")
END_COLUMNS = ("to", "stop", "end", "end_s", "end_time", "offset")
TYPE_COLUMNS = ("type", "behavior", "behaviour", "label", "name")
#: bout types that describe the scoring session, not a behaviour (skipped by default)
META_TYPES = ("_DEFAULT", "StartEnd")


def _find(header: list[str], choices: Sequence[str]) -> int | None:
    low = [h.strip().lower() for h in header]
    for c in choices:
        if c in low:
            return low.index(c)
    return None


def read_bout_table(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``(start_s, end_s, types)`` from a bout-table CSV (see the module docstring)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path}: empty annotation file; expected a header with from, to and type columns")
    header = rows[0]
    i_from, i_to, i_type = _find(header, START_COLUMNS), _find(header, END_COLUMNS), _find(header, TYPE_COLUMNS)
    missing = [
        f"{what} (one of {', '.join(choices)})"
        for what, idx, choices in (
            ("start column", i_from, START_COLUMNS),
            ("end column", i_to, END_COLUMNS),
            ("behaviour column", i_type, TYPE_COLUMNS),
        )
        if idx is None
    ]
    if missing:
        raise ValueError(f"{path}: not a bout table; missing {'; '.join(missing)}; header is {header}")
    starts, ends, types = [], [], []
    for r, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            s, e = float(row[i_from]), float(row[i_to])
        except (ValueError, IndexError):
            raise ValueError(
                f"{path}: line {r}: field {header[i_from]!r}/{header[i_to]!r} must be numbers (seconds); "
                f"got {row[i_from:i_from + 1]} / {row[i_to:i_to + 1]}"
            ) from None
        if not (math.isfinite(s) and math.isfinite(e)) or e < s:
            raise ValueError(f"{path}: line {r}: bout from {s} to {e} s is empty or not finite")
        starts.append(s)
        ends.append(e)
        types.append(row[i_type].strip())
    return np.asarray(starts, float), np.asarray(ends, float), types


def bouts_to_frames(
    starts_s: Sequence[float],
    ends_s: Sequence[float],
    types: Sequence[str],
    n_frames: int,
    fps: float,
    vocabulary: Sequence[str] | None = None,
    background: str = "none",
    ignore_types: Sequence[str] = META_TYPES,
    source: str = "annotations",
) -> tuple[np.ndarray, list[str]]:
    """Per-frame labels (int64, 0 = ``background``) from bouts given in seconds."""
    if not fps or fps <= 0:
        raise ValueError(f"{source}: fps must be > 0 to convert bout times to frames; got {fps!r}")
    keep = [i for i, t in enumerate(types) if t not in set(ignore_types)]
    kinds = sorted({types[i] for i in keep})
    if vocabulary is None:
        names = [background] + kinds
    else:
        names = [str(v) for v in vocabulary]
        unknown = [k for k in kinds if k not in names]
        if unknown:
            raise ValueError(f"{source}: bout types {unknown} are not in the vocabulary {names}")
    labels = np.zeros(n_frames, dtype=np.int64)
    if background not in names:
        labels[:] = -1
    written = np.zeros(n_frames, dtype=np.int64)
    beyond = 0
    overlap = 0
    for i in keep:
        a = max(int(math.ceil(starts_s[i] * fps - 1e-6)), 0)
        b = min(int(math.floor(ends_s[i] * fps + 1e-6)), n_frames - 1)
        if starts_s[i] * fps > n_frames - 1:
            beyond += 1
            continue
        if b < a:
            continue
        lab = names.index(types[i])
        overlap += int(((written[a : b + 1] > 0) & (labels[a : b + 1] != lab)).sum())
        labels[a : b + 1] = lab
        written[a : b + 1] += 1
    skipped = len(types) - len(keep)
    log.info(
        "%s: %d bouts -> %d labelled frames of %d at %g fps (%d session rows %s skipped)",
        source, len(keep), int((written > 0).sum()), n_frames, fps, skipped, list(ignore_types),
    )
    if beyond:
        log.warning("%s: %d bouts start after the last frame (%d frames at %g fps); ignored", source, beyond, n_frames, fps)
    if overlap:
        log.warning("%s: %d frames lie in overlapping bouts of different types; the later row wins", source, overlap)
    return labels, names


def load_annotations(
    path: str | Path,
    n_frames: int,
    fps: float | None = None,
    vocabulary: Sequence[str] | None = None,
    background: str = "none",
    ignore_types: Sequence[str] = META_TYPES,
) -> tuple[np.ndarray, list[str]]:
    """Per-frame labels ``(labels [n_frames], label_names)`` from a bout table or a per-frame file.

    ``fps`` converts bout times to frames; when None, 25 fps is assumed and logged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(
                f"{path}: holds pickled objects; per-frame label arrays must be plain integer .npy files ({exc})"
            ) from None
        return _per_frame(np.asarray(arr), n_frames, vocabulary, path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        head = next(csv.reader(fh), [])
    if _find(head, START_COLUMNS) is not None and _find(head, END_COLUMNS) is not None:
        if fps is None:
            fps = DEFAULT_ANNOTATION_FPS
            log.warning("%s: frame rate not given; assuming %g fps to convert bout times to frames", path, fps)
        s, e, t = read_bout_table(path)
        return bouts_to_frames(s, e, t, n_frames, fps, vocabulary, background, ignore_types, source=str(path))
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if any(len(r) != 1 for r in rows):
        raise ValueError(
            f"{path}: not a bout table (no from/to columns) and not one label per line; "
            f"first line: {rows[0] if rows else []}"
        )
    vals = [r[0].strip() for r in rows]
    if vals and len(vals) == n_frames + 1 and not _is_number(vals[0]):
        vals = vals[1:]  # a header line
    if all(_is_number(v) for v in vals):
        return _per_frame(np.asarray([int(float(v)) for v in vals], dtype=np.int64), n_frames, vocabulary, path)
    names = [str(v) for v in vocabulary] if vocabulary is not None else sorted(set(vals))
    unknown = sorted(set(vals) - set(names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown} are not in the vocabulary {names}")
    return _per_frame(np.asarray([names.index(v) for v in vals], dtype=np.int64), n_frames, names, path)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _per_frame(arr: np.ndarray, n_frames: int, vocabulary, path: Path) -> tuple[np.ndarray, list[str]]:
    arr = np.asarray(arr).ravel()
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{path}: per-frame labels must be integers; got dtype {arr.dtype}")
    if arr.shape[0] != n_frames:
        raise ValueError(f"{path}: {arr.shape[0]} per-frame labels for a recording of {n_frames} frames")
    top = int(arr.max()) if arr.size else -1
    names = list(vocabulary) if vocabulary is not None else [f"label_{i}" for i in range(top + 1)]
    return arr.astype(np.int64), [str(n) for n in names]
