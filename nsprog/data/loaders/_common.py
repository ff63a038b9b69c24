"""Helpers shared by the format loaders: errors that name the file, CSV and HDF5 reading."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["FormatError", "read_head", "read_csv_rows", "rows_to_float", "open_h5", "decode_str", "stem_name"]

log = logging.getLogger("nsprog")


class FormatError(ValueError):
    """A file does not match the format it is read as; the message names the file and the field."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


def read_head(path: str | Path, n: int = 8192) -> str:
    """The first ``n`` bytes of a file as text (undecodable bytes replaced)."""
    with open(path, "rb") as fh:
        return fh.read(n).decode("utf-8", errors="replace")


def read_csv_rows(path: str | Path, limit: int | None = None) -> list[list[str]]:
    """All (or the first ``limit``) rows of a CSV file as lists of strings."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        if limit is None:
            return list(reader)
        out = []
        for i, row in enumerate(reader):
            if i >= limit:
                break
            out.append(row)
        return out


def rows_to_float(
    rows: Sequence[Sequence[str]],
    path: str | Path,
    columns: Sequence[int] | None = None,
    column_names: Sequence[str] | None = None,
    first_line: int = 1,
) -> np.ndarray:
    """Numbers from CSV rows (empty cells and ``nan`` become NaN), shape (rows, columns).

    ``columns`` selects cell indices; ``first_line`` is the file line number of ``rows[0]``
    (1-based) so errors can name it.
    """
    if not rows:
        return np.zeros((0, len(columns) if columns is not None else 0), dtype=np.float64)
    need = max(columns) + 1 if columns is not None else max(len(r) for r in rows)
    short = [i for i, r in enumerate(rows) if len(r) < need]
    if short:
        i = short[0]
        raise FormatError(path, f"line {first_line + i} has {len(rows[i])} fields; expected at least {need}")
    if columns is not None:  # select before building the string array: files may hold hundreds of other columns
        cols = list(columns)
        arr = np.asarray([[r[j] for j in cols] for r in rows], dtype=str)
    else:
        arr = np.asarray([r[:need] for r in rows], dtype=str)
    arr = np.char.strip(arr)
    arr[arr == ""] = "nan"
    try:
        return arr.astype(np.float64)
    except ValueError:
        for i in range(arr.shape[0]):
            for j in range(arr.shape[1]):
                try:
                    float(arr[i, j])
                except ValueError:
                    col = column_names[j] if column_names is not None else f"column {j + 1}"
                    raise FormatError(
                        path, f"line {first_line + i}, field {col!r}: expected a number, got {str(arr[i, j])!r}"
                    ) from None
        raise


class _H5File:
    """An h5py file whose missing groups and datasets are :class:`FormatError`s naming the
    file and the object (h5py itself says only "Unable to synchronously open object")."""

    def __init__(self, path: str | Path, f, what: str):
        self._path, self._f, self._what = path, f, what

    def __enter__(self):
        self._f.__enter__()
        return self._f

    def __exit__(self, exc_type, exc, tb):
        self._f.__exit__(exc_type, exc, tb)
        if exc_type is KeyError and "object" in str(exc):
            import re

            name = re.search(r"object '([^']+)'", str(exc))
            part = f" {name.group(1)!r}" if name else ""
            raise FormatError(self._path, f"the HDF5 object{part} is missing: an incomplete or damaged "
                                          f"{self._what} file ({exc.args[0] if exc.args else exc})") from None
        return False

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __getitem__(self, key):
        return self._f[key]

    def __contains__(self, key):
        return key in self._f


def open_h5(path: str | Path, what: str = "HDF5"):
    """Open an HDF5 file read-only (use it with ``with``), naming the file in every error."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(path, f"not a readable HDF5 file ({exc})") from None
    return _H5File(path, f, what)


def decode_str(v) -> str:
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def stem_name(path: str | Path) -> str:
    return Path(path).stem
