"""DeepLabCut output: CSV (3 or 4 header rows) and pandas HDF5 read with h5py only.

CSV
    Header rows ``scorer`` / [``individuals``] / ``bodyparts`` / ``coords`` sit in a label
    column; cells right of it hold one coordinate each (``x``, ``y``, ``likelihood``).
    Columns left of the label column are index columns and are ignored, which covers
    files re-saved by pandas with an extra index column (there the frame index becomes
    a data column next to the label column; it is dropped as well because its header
    cells are empty). Multi-animal files (4 header rows) may hold ``single`` (unique)
    body parts; the keypoint axis is the union of body parts over individuals, in order
    of first appearance, and combinations that do not occur are NaN.

HDF5
    pandas writes DataFrames either in the *fixed* layout (``axis0_level*`` /
    ``axis0_label*`` hold the column MultiIndex, ``block*_values`` the numbers) or the
    *table* layout (a compound ``table`` dataset; the column names are a pickled list in
    the PyTables attributes ``non_index_axes`` / ``values_block_*_kind``). Both are read
    with h5py. The pickled column names are decoded by :class:`RestrictedUnpickler`, which
    refuses every global except plain containers and strings, so a crafted file cannot
    run code.

Confidence is the ``likelihood`` coordinate (NaN when absent, e.g. labelled-data files).
Integer coordinates at (0, 0) are the padding value of some exporters; they are turned
into NaN when windows are cut (``zero_as_missing``), not here.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nsprog.data.loaders._common import FormatError, decode_str, open_h5, read_csv_rows, rows_to_float
from nsprog.data.recording import Recording

__all__ = [
    "RestrictedUnpickler",
    "safe_unpickle",
    "load_dlc_csv",
    "load_dlc_h5",
    "detect_dlc_csv",
    "detect_dlc_h5",
    "columns_to_recording",
]

log = logging.getLogger("nsprog")
HEADER_LABELS = ("scorer", "individuals", "bodyparts", "coords")


# --------------------------------------------------------------------------- safe pickle
class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain data: lists, tuples, dicts, str, numbers, numpy scalars.

    Any other global (functions, classes, ``os.system`` ...) raises
    :class:`pickle.UnpicklingError` naming it.
    """

    ALLOWED = frozenset(
        {
            ("builtins", "list"),
            ("builtins", "tuple"),
            ("builtins", "dict"),
            ("builtins", "str"),
            ("builtins", "bytes"),
            ("builtins", "int"),
            ("builtins", "float"),
            ("builtins", "bool"),
            ("__builtin__", "list"),
            ("__builtin__", "tuple"),
            ("__builtin__", "dict"),
            ("__builtin__", "unicode"),
            ("__builtin__", "str"),
            ("__builtin__", "int"),
            ("__builtin__", "long"),
            ("__builtin__", "float"),
            ("__builtin__", "bool"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            if module == "__builtin__":
                module = "builtins"
                name = {"unicode": "str", "long": "int"}.get(name, name)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name} (only plain data is allowed)")


def safe_unpickle(data: bytes) -> Any:
    """Decode a pickle of plain data with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="utf-8").load()


# --------------------------------------------------------------------------- columns -> recording
def columns_to_recording(
    path: Path,
    values: np.ndarray,
    individuals: Sequence[str],
    bodyparts: Sequence[str],
    coords: Sequence[str],
    fps: float | None,
    format: str,
    metadata: dict | None = None,
) -> Recording:
    """Build a recording from DLC-style columns (one name tuple per column of ``values``)."""
    coords = [c.strip().lower() for c in coords]
    known = {"x", "y", "likelihood"}
    odd = sorted({c for c in coords if c not in known})
    if odd:
        log.info("%s: ignoring coordinate(s) %s (only x, y and likelihood are read)", path, odd)
    use = [j for j, c in enumerate(coords) if c in known]
    if not any(coords[j] == "x" for j in use):
        raise FormatError(path, f"no 'x' coordinate columns; coords found: {sorted(set(coords))}")
    inds: list[str] = []
    kps: list[str] = []
    for j in use:
        if individuals[j] not in inds:
            inds.append(individuals[j])
        if bodyparts[j] not in kps:
            kps.append(bodyparts[j])
    n = values.shape[0]
    pos = np.full((n, len(inds), len(kps), 2), np.nan, dtype=np.float32)
    conf = np.full((n, len(inds), len(kps)), np.nan, dtype=np.float32)
    seen = set()
    for j in use:
        key = (individuals[j], bodyparts[j], coords[j])
        if key in seen:
            raise FormatError(path, f"column {key} appears twice")
        seen.add(key)
        i, k = inds.index(individuals[j]), kps.index(bodyparts[j])
        if coords[j] == "likelihood":
            conf[:, i, k] = values[:, j]
        else:
            pos[:, i, k, 0 if coords[j] == "x" else 1] = values[:, j]
    half = [(i, k) for (i, k, c) in seen if c in ("x", "y") and (i, k, "y" if c == "x" else "x") not in seen]
    if half:
        raise FormatError(path, f"keypoint(s) {half[:5]} have only one of the x / y columns")
    names = [i if i else "individual_0" for i in inds]
    return Recording.from_arrays(
        pos,
        conf,
        keypoint_names=kps,
        individual_names=names,
        fps=fps,
        source=str(path),
        format=format,
        metadata=metadata,
    )


# --------------------------------------------------------------------------- CSV
def _csv_header(rows: list[list[str]]) -> tuple[int, int] | None:
    """(label column, number of header rows) when the rows look like a DLC CSV header."""
    if not rows:
        return None
    first = [c.strip().lower() for c in rows[0]]
    if "scorer" not in first:
        return None
    lab = first.index("scorer")
    n = 0
    for r in rows:
        if len(r) > lab and r[lab].strip().lower() in HEADER_LABELS:
            n += 1
        else:
            break
    labels = [rows[i][lab].strip().lower() for i in range(n)]
    if "bodyparts" not in labels or "coords" not in labels:
        return None
    return lab, n


def detect_dlc_csv(path: Path) -> bool:
    return _csv_header(read_csv_rows(path, limit=5)) is not None


def load_dlc_csv(path: str | Path, fps: float | None = None) -> list[Recording]:
    """Read a DeepLabCut CSV (3 or 4 header rows, optional leading index columns)."""
    path = Path(path)
    rows = read_csv_rows(path)
    found = _csv_header(rows[:5])
    if found is None:
        head = [r[:3] for r in rows[:4]]
        raise FormatError(
            path,
            "not a DeepLabCut CSV: expected header rows 'scorer', ['individuals'], 'bodyparts', 'coords' "
            f"in one column; first cells are {head}",
        )
    lab, nh = found
    header = {rows[i][lab].strip().lower(): rows[i] for i in range(nh)}
    width = max(len(r) for r in rows[:nh])
    bp_row = header["bodyparts"] + [""] * (width - len(header["bodyparts"]))
    co_row = header["coords"] + [""] * (width - len(header["coords"]))
    ind_row = header.get("individuals", [""] * width)
    ind_row = ind_row + [""] * (width - len(ind_row))
    cols = [j for j in range(lab + 1, width) if bp_row[j].strip() and co_row[j].strip()]
    data_rows = [r for r in rows[nh:] if any(c.strip() for c in r)]
    if not cols:
        raise FormatError(path, "the header names no body part columns (zero keypoints)")
    if not data_rows:
        raise FormatError(path, f"no data rows after the {nh} header rows (zero frames)")
    values = rows_to_float(
        data_rows, path, columns=cols,
        column_names=[f"{ind_row[j]}/{bp_row[j]}/{co_row[j]}".lstrip("/") for j in cols],
        first_line=nh + 1,
    )
    meta = {"scorer": header["scorer"][cols[0]] if len(header["scorer"]) > cols[0] else "", "header_rows": nh}
    return [
        columns_to_recording(
            path, values,
            [ind_row[j].strip() for j in cols], [bp_row[j].strip() for j in cols], [co_row[j] for j in cols],
            fps, "dlc_csv", meta,
        )
    ]


# --------------------------------------------------------------------------- HDF5
def _frame_groups(f) -> list[str]:
    out = []

    def visit(name, obj):
        if "pandas_type" in obj.attrs:
            out.append(name)

    f.visititems(visit)
    return out


def detect_dlc_h5(path: Path) -> bool:
    try:
        with open_h5(path) as f:
            return bool(_frame_groups(f))
    except FormatError:
        return False


def _pickled_attr(path: Path, obj, name: str) -> Any:
    if name not in obj.attrs:
        raise FormatError(path, f"{obj.name}: attribute {name!r} is missing (expected the pickled column list)")
    raw = obj.attrs[name]
    data = raw.tobytes() if isinstance(raw, np.void) else bytes(raw) if isinstance(raw, (bytes, np.bytes_)) else None
    if data is None:
        raise FormatError(path, f"{obj.name}: attribute {name!r} is {type(raw).__name__}, not a pickle")
    try:
        return safe_unpickle(data)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a format error naming the field
        raise FormatError(path, f"{obj.name}: attribute {name!r} could not be decoded safely ({exc})") from None


def _fixed_columns(path: Path, g, axis: str) -> list[tuple[str, ...]]:
    nlev = int(g.attrs.get(f"{axis}_nlevels", 1))
    if f"{axis}_level0" not in g:
        # a single-level index: the names are the dataset itself
        return [(decode_str(v),) for v in g[axis][()]]
    levels = [[decode_str(v) for v in g[f"{axis}_level{i}"][()]] for i in range(nlev)]
    codes = [g[f"{axis}_label{i}"][()].astype(np.int64) for i in range(nlev)]
    return [tuple(levels[i][c[j]] if c[j] >= 0 else "" for i, c in enumerate(codes)) for j in range(len(codes[0]))]


def _level_names(g, axis: str) -> list[str]:
    nlev = int(g.attrs.get(f"{axis}_nlevels", 1))
    out = []
    for i in range(nlev):
        ds = g.get(f"{axis}_level{i}")
        out.append(decode_str(ds.attrs.get("name", b"")) if ds is not None else "")
    return out


def _read_fixed(path: Path, g) -> tuple[np.ndarray, list[tuple[str, ...]], list[str]]:
    columns = _fixed_columns(path, g, "axis0")
    names = _level_names(g, "axis0")
    nblocks = int(g.attrs.get("nblocks", 1))
    n_rows = g["axis1"].shape[0]
    values = np.full((n_rows, len(columns)), np.nan, dtype=np.float64)
    col_index = {c: j for j, c in enumerate(columns)}
    for b in range(nblocks):
        ds = g[f"block{b}_values"]
        arr = ds[()]
        if not bool(ds.attrs.get("transposed", 0)):
            arr = arr.T  # stored as (items, rows)
        items = _fixed_columns(path, g, f"block{b}_items")
        if arr.shape != (n_rows, len(items)):
            raise FormatError(path, f"{ds.name} has shape {arr.shape}; expected ({n_rows}, {len(items)})")
        for j, it in enumerate(items):
            values[:, col_index[it]] = arr[:, j]
    return values, columns, names


def _read_table(path: Path, g) -> tuple[np.ndarray, list[tuple[str, ...]], list[str]]:
    if "table" not in g:
        raise FormatError(path, f"{g.name}: pandas table layout without a 'table' dataset")
    t = g["table"]
    axes = _pickled_attr(path, g, "non_index_axes")
    try:
        all_columns = [tuple(decode_str(x) for x in (c if isinstance(c, tuple) else (c,))) for c in axes[0][1]]
    except (TypeError, IndexError, KeyError):
        raise FormatError(path, f"{g.name}: attribute 'non_index_axes' is not a list of (axis, columns)") from None
    data = t[()]
    blocks = sorted(
        (n for n in data.dtype.names if n.startswith("values_block_")), key=lambda s: int(s.rsplit("_", 1)[1])
    )
    values = np.full((data.shape[0], len(all_columns)), np.nan, dtype=np.float64)
    col_index = {c: j for j, c in enumerate(all_columns)}
    pos = 0
    for b in blocks:
        block = np.asarray(data[b], dtype=np.float64).reshape(data.shape[0], -1)
        kind = f"{b}_kind"
        if kind in t.attrs:
            items = [tuple(decode_str(x) for x in (c if isinstance(c, tuple) else (c,))) for c in _pickled_attr(path, t, kind)]
        else:
            items = all_columns[pos : pos + block.shape[1]]
        if len(items) != block.shape[1]:
            raise FormatError(path, f"{t.name}: field {b} has {block.shape[1]} columns but {len(items)} names")
        for j, it in enumerate(items):
            if it not in col_index:
                raise FormatError(path, f"{t.name}: field {b} names column {it} absent from non_index_axes")
            values[:, col_index[it]] = block[:, j]
        pos += block.shape[1]
    nlev = len(all_columns[0]) if all_columns else 0
    default = list(HEADER_LABELS) if nlev == 4 else ["scorer", "bodyparts", "coords"][:nlev]
    return values, all_columns, default


def load_dlc_h5(path: str | Path, fps: float | None = None, key: str | None = None) -> list[Recording]:
    """Read a DeepLabCut (pandas) HDF5 file with h5py; ``key`` picks the group when there are several."""
    path = Path(path)
    with open_h5(path, "DeepLabCut") as f:
        groups = _frame_groups(f)
        if not groups:
            raise FormatError(path, "no pandas DataFrame group (attribute 'pandas_type') found; not a DeepLabCut H5")
        if key is None:
            if len(groups) > 1:
                raise FormatError(path, f"holds several DataFrames {groups}; choose one with key=")
            key = groups[0]
        if key not in groups:
            raise FormatError(path, f"no DataFrame {key!r}; available: {', '.join(groups)}")
        g = f[key]
        ptype = decode_str(g.attrs["pandas_type"])
        if ptype == "frame":
            values, columns, level_names = _read_fixed(path, g)
        elif ptype == "frame_table":
            values, columns, level_names = _read_table(path, g)
        else:
            raise FormatError(path, f"{key}: pandas_type {ptype!r} is not a DataFrame ('frame' or 'frame_table')")
    if not columns:
        raise FormatError(path, f"{key}: the DataFrame has no columns (zero keypoints)")
    nlev = len(columns[0])
    level_names = [n.lower() for n in level_names] if any(level_names) else []
    if level_names and "bodyparts" in level_names and "coords" in level_names:
        ib, ic = level_names.index("bodyparts"), level_names.index("coords")
        ii = level_names.index("individuals") if "individuals" in level_names else None
    elif nlev in (3, 4):
        ii, ib, ic = (1, 2, 3) if nlev == 4 else (None, 1, 2)
    else:
        raise FormatError(path, f"{key}: column index has {nlev} levels {level_names}; expected scorer/[individuals]/bodyparts/coords")
    inds = [c[ii] if ii is not None else "" for c in columns]
    meta = {"scorer": columns[0][0], "h5_key": key, "pandas_layout": ptype, "columns": ["/".join(c[1:]) for c in columns]}
    return [columns_to_recording(path, values, inds, [c[ib] for c in columns], [c[ic] for c in columns], fps, "dlc_h5", meta)]
