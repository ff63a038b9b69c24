"""SimBA-style pose CSV with ``<bodypart>_<animal>_{x,y,p}`` columns (e.g. the CRIM13 samples).

The header is one row. A keypoint is every ``<name>_x`` / ``<name>_y`` column pair (with an
optional ``<name>_p`` confidence); when ``<name>`` ends in ``_<token>`` and that token is a
number (``Nose_1``, ``Tail_base_2``) the token is the animal and the rest the body part,
so ``Tail_base_2_x`` is body part ``Tail_base`` of animal ``2``. Individuals are named
``mouse_<token>`` in order of first appearance (the first is the resident).

Columns ending in ``_prediction`` (SimBA classifier outputs such as ``attack_prediction``)
become ``frame_data`` columns; :meth:`Recording.labels_from_flags` turns them into labels.
All other columns (SimBA's feature columns) are ignored; their number is in
``metadata["ignored_columns"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nsprog.data.loaders._common import FormatError, read_csv_rows, rows_to_float
from nsprog.data.recording import Recording

__all__ = ["load_simba_csv", "detect_simba_csv"]

_COORD = re.compile(r"^(?P<name>.+)_(?P<c>[xyp])$")
_ANIMAL = re.compile(r"^(?P<bp>.+)_(?P<ind>\d+)$")


def _keypoint_columns(header: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for j, h in enumerate(header):
        m = _COORD.match(h.strip())
        if m:
            out.setdefault(m["name"], {})[m["c"]] = j
    return {k: v for k, v in out.items() if "x" in v and "y" in v}


def _half_keypoints(header: list[str]) -> list[tuple[str, set, list]]:
    """Names with an x, y or p column whose x or y column is missing."""
    seen: dict[str, set] = {}
    for h in header:
        m = _COORD.match(h.strip())
        if m:
            seen.setdefault(m["name"], set()).add(m["c"])
    return [(n, c, [k for k in "xy" if k not in c]) for n, c in seen.items() if not {"x", "y"} <= c and c & {"x", "y"}]


def detect_simba_csv(path: Path) -> bool:
    rows = read_csv_rows(path, limit=1)
    if not rows:
        return False
    header = rows[0]
    if "x_loc" in header or any(h.strip().lower() in ("bodyparts", "coords") for h in header):
        return False
    return len(_keypoint_columns(header)) >= 1


def load_simba_csv(path: str | Path, fps: float | None = None) -> list[Recording]:
    """Read a SimBA-style CSV (see the module docstring)."""
    path = Path(path)
    rows = read_csv_rows(path)
    if not rows:
        raise FormatError(path, "empty file")
    header = [h.strip() for h in rows[0]]
    kcols = _keypoint_columns(header)
    if not kcols:
        raise FormatError(path, "no <bodypart>_x / <bodypart>_y column pairs in the header (zero keypoints)")
    half = _half_keypoints(header)
    if half:
        raise FormatError(path, "keypoint(s) with only some of their coordinate columns: " + "; ".join(
            f"{name} has {', '.join(f'{name}_{c}' for c in sorted(have))} but no {', '.join(f'{name}_{c}' for c in missing)}"
            for name, have, missing in half[:5]) + " (a deleted or renamed column?)")
    inds: list[str] = []
    bps: list[str] = []
    where: list[tuple[int, int, dict[str, int]]] = []
    split = all(_ANIMAL.match(n) for n in kcols)
    for name, cols in kcols.items():
        m = _ANIMAL.match(name) if split else None
        ind, bp = (f"mouse_{m['ind']}", m["bp"]) if m else ("individual_0", name)
        if ind not in inds:
            inds.append(ind)
        if bp not in bps:
            bps.append(bp)
        where.append((inds.index(ind), bps.index(bp), cols))
    data_rows = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not data_rows:
        raise FormatError(path, "no data rows after the header (zero frames)")
    pred = [j for j, h in enumerate(header) if h.endswith("_prediction")]
    used = sorted({j for _, _, c in where for j in c.values()} | set(pred))
    values = rows_to_float(data_rows, path, columns=used, column_names=[header[j] for j in used], first_line=2)
    col = {j: i for i, j in enumerate(used)}
    n = values.shape[0]
    pos = np.full((n, len(inds), len(bps), 2), np.nan, dtype=np.float32)
    conf = np.full((n, len(inds), len(bps)), np.nan, dtype=np.float32)
    for i, k, cols in where:
        pos[:, i, k, 0] = values[:, col[cols["x"]]]
        pos[:, i, k, 1] = values[:, col[cols["y"]]]
        if "p" in cols:
            conf[:, i, k] = values[:, col[cols["p"]]]
    frame_data = {header[j]: values[:, col[j]] for j in pred}
    ignored = len(header) - len({j for _, _, c in where for j in c.values()}) - len(pred)
    return [
        Recording.from_arrays(
            pos, conf, keypoint_names=bps, individual_names=inds, fps=fps, frame_data=frame_data,
            source=str(path), format="simba_csv", metadata={"ignored_columns": int(ignored)},
        )
    ]
